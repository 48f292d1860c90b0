import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A layer found in an additional layer store: `<store>/[base64(reference)/]<digest>/` holding
/// `diff/` (its files), `info` (JSON about it) and `blob` (its compressed tar).
public struct OverlayAdditionalLayer: AdditionalLayer {
    public let digest: String
    /// `<store>/[base64(reference)/]<digest>`.
    public let path: FilePath
    let driver: OverlayDriver

    /// The layer's files.
    public var contents: FilePath { path.appending(AdditionalLayerLayout.contents) }

    public func info() throws(StorageError) -> [UInt8] {
        let file = path.appending(AdditionalLayerLayout.info)
        return try attempt("read additional layer info", file) { () throws(Errno) in
            let fd = try FileDescriptor.currentWorkingDirectory.open(at: file, flags: O_RDONLY)
            defer { fd.closeQuietly() }
            return try fd.readToEnd()
        }
    }

    public func blob() throws(StorageError) -> FileDescriptor {
        let file = path.appending(AdditionalLayerLayout.blob)
        return try attempt("open additional layer blob", file) { () throws(Errno) in
            try FileDescriptor.currentWorkingDirectory.open(at: file, flags: O_RDONLY)
        }
    }

    /// Makes layer `id` on `parent` whose `diff` is this layer's directory (a symlink into the
    /// store). Such a layer is only ever mounted read-only.
    public func createAs(_ id: LayerID, parent: LayerID?) throws(StorageError) {
        try driver.createLayer(id, parent: parent, options: CreateOptions(), readWrite: false, template: nil,
                               additionalLayer: path)
    }

    /// Nothing is held open for a plain directory store.
    public func release() {}
}

extension OverlayDriver {
    /// Finds a layer by digest in the configured additional layer stores.
    public func lookupAdditionalLayer(digest: String, reference: String) throws(StorageError) -> any AdditionalLayer {
        let operation = "look up additional layer \(digest)"
        try Self.validateDigest(digest, operation: operation)
        for store in options.additionalLayerStores {
            let base = store.withReference ? store.path.appending(Self.base64(reference)) : store.path
            let path = base.appending(digest)
            if let st = try? FileDescriptor.currentWorkingDirectory.status(at: path.appending(AdditionalLayerLayout.contents), followSymlinks: true),
               st.kind == .directory {
                return OverlayAdditionalLayer(digest: digest, path: path, driver: self)
            }
        }
        throw StorageError(.notFound, operation, reason: "no additional layer store holds it")
    }

    /// The additional layer that layer `id` was created from with `createAs`.
    public func lookupAdditionalLayerByID(_ id: LayerID) throws(StorageError) -> any AdditionalLayer {
        let layer = try locate(id, operation: "look up additional layer of \(id)")
        let file = layer.path(StoreLayout.additionalLayer)
        let text = try attempt("look up additional layer of \(id)", file) { () throws(Errno) in
            try layer.read(StoreLayout.additionalLayer)
        }
        let path = FilePath(text)
        guard let digest = path.lastComponent?.string else {
            throw StorageError(.corrupt, "look up additional layer of \(id)", path: file.string, reason: "it names no layer")
        }
        return OverlayAdditionalLayer(digest: digest, path: path, driver: self)
    }

    /// Whether the layer was made from an additional layer (and so is read-only).
    func isAdditionalLayer(_ layer: LayerLocation) -> Bool {
        layer.has(StoreLayout.additionalLayer)
    }

    static func validateDigest(_ digest: String, operation: String) throws(StorageError) {
        let parts = digest.split(separator: ":", omittingEmptySubsequences: false)
        let lowerAlnum: (Character) -> Bool = { ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") }
        guard parts.count == 2, !parts[0].isEmpty, parts[0].allSatisfy(lowerAlnum), parts[1].count >= 32,
              parts[1].allSatisfy({ ($0 >= "a" && $0 <= "f") || ($0 >= "0" && $0 <= "9") })
        else {
            throw StorageError(.invalidArgument, operation, reason: "'\(digest)' is not a digest such as sha256:<hex>")
        }
    }

    /// The directory name an additional layer store with references uses for `reference`:
    /// its standard base64.
    public static func referenceDirectoryName(for reference: String) -> String { base64(reference) }

    /// Standard base64 with padding, as the store names reference directories.
    static func base64(_ text: String) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let b0 = UInt32(bytes[i]), b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
            let b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
            let n = (b0 << 16) | (b1 << 8) | b2
            out.append(alphabet[Int((n >> 18) & 63)])
            out.append(alphabet[Int((n >> 12) & 63)])
            out.append(i + 1 < bytes.count ? alphabet[Int((n >> 6) & 63)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? alphabet[Int(n & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
