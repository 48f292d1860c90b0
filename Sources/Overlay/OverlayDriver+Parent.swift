import GraphDriver
import StrataSystem
import SystemPackage

extension OverlayDriver {
    /// The layer's parent: the layer whose `diff` the first entry of its `lower` file links to;
    /// `nil` for a base layer.
    public func parent(of id: LayerID) throws(StorageError) -> LayerID? {
        let layer = try locate(id, operation: "find parent of layer \(id)")
        return try parentLayer(of: layer)
    }
}
