import ArgumentParser
import GraphDriver
import OCIImage
import Overlay

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import an image from an OCI image layout as a chain of layers; print the top layer's ID.",
        discussion: """
            Layers are named by their chain IDs, and layers already present are reused. Every blob \
            digest and every layer's diff ID is checked; on any failure the layers this import made \
            are removed again.
            Example: strata import ./debian-oci:bookworm
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The layout directory, with :TAG when it holds several images.") var reference: String

    func run() throws {
        let driver = try global.openDriver()
        let importer = OCIImporter(reference: reference)
        let progress = Progress(label: "import")
        let top = try importer.importImage(into: driver) { layer, reused in
            progress.note("\(reused ? "reused" : "applied") \(layer.layerID.rawValue.prefix(12)) (\(layer.descriptor.size) bytes)")
        }
        progress.finish()
        writeOutput(top.rawValue + "\n")
    }
}
