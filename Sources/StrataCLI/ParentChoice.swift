import ArgumentParser
import GraphDriver
import Overlay

/// What `apply-diff`, `diff`, `changes` and `diff-size` take the changes to be against: the
/// layer's own parent unless `--parent ID` names another layer or `--no-parent` asks for none
/// (an empty tree).
struct ParentChoice: ParsableArguments {
    @Option(name: .customLong("parent"),
            help: ArgumentHelp("The layer the changes are against (default: the layer's own parent).", valueName: "id"))
    var parent: LayerIDArgument?

    @Flag(name: .customLong("no-parent"), help: "Against no layer: an empty tree, whatever the layer sits on.")
    var noParent = false

    func validate() throws {
        if parent != nil && noParent {
            throw ValidationError("--parent and --no-parent exclude each other")
        }
    }

    /// The parent to give the driver for layer `id`: `nil` for `--no-parent`.
    func parent(of id: LayerID, in driver: OverlayDriver) throws(StorageError) -> LayerID? {
        if noParent { return nil }
        if let parent { return parent.id }
        return try driver.parent(of: id)
    }
}
