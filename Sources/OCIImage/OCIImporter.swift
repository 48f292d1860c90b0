import Crypto
import FoundationEssentials
import GraphDriver
import StrataSystem
import SystemPackage

/// Imports an image from an OCI image layout directory into a driver as a chain of layers named
/// by their chain IDs.
///
/// Every blob's digest is checked before it is used, and every layer's uncompressed digest
/// (its diff ID) is checked against the image configuration while it is applied. Layers that
/// are already present are reused. When anything fails, the layers this import created are
/// removed again: nothing half-imported stays behind.
public struct OCIImporter {
    /// Where the layout is (the directory holding `oci-layout`, `index.json` and `blobs/`).
    public let layout: URL
    /// The tag to import (`org.opencontainers.image.ref.name`); `nil` when the index holds one image.
    public let tag: String?

    /// Parses `DIR[:TAG]`.
    public init(reference: String) {
        if let colon = reference.lastIndex(of: ":"), !reference[reference.index(after: colon)...].contains("/") {
            layout = URL(fileURLWithPath: String(reference[..<colon]))
            tag = String(reference[reference.index(after: colon)...])
        } else {
            layout = URL(fileURLWithPath: reference)
            tag = nil
        }
    }

    public init(layout: URL, tag: String?) {
        self.layout = layout
        self.tag = tag
    }

    /// One layer of the image, with the IDs it gets in the store.
    public struct Layer: Sendable, Hashable {
        public var descriptor: OCIDescriptor
        public var diffID: String
        public var chainID: String
        /// The store's layer ID: the chain ID's hex digits.
        public var layerID: LayerID
    }

    /// The image's layers, bottom first, after checking the index, manifest and config digests.
    public func layers() throws(StorageError) -> [Layer] {
        let manifest = try selectManifest()
        guard manifest.config.digest.hasPrefix("sha256:") else {
            throw unsupported("config digest \(manifest.config.digest) (only sha256 is supported)")
        }
        let config: OCIConfiguration = try decode(blob: manifest.config, what: "image configuration")
        guard config.rootfs.diff_ids.count == manifest.layers.count else {
            throw invalid("the manifest lists \(manifest.layers.count) layers but the configuration \(config.rootfs.diff_ids.count) diff IDs")
        }
        var result: [Layer] = []
        var chain: String?
        for (descriptor, diffID) in zip(manifest.layers, config.rootfs.diff_ids) {
            guard MediaType.layers.contains(descriptor.mediaType) else {
                throw unsupported("layer media type \(descriptor.mediaType) of \(descriptor.digest)")
            }
            guard Self.isSHA256(descriptor.digest), Self.isSHA256(diffID) else {
                throw unsupported("digest \(descriptor.digest) / \(diffID) (only sha256 is supported)")
            }
            let chainID = chain.map { "sha256:" + Self.sha256Hex(Data(($0 + " " + diffID).utf8)) } ?? diffID
            chain = chainID
            let layerID = try LayerID(String(chainID.dropFirst("sha256:".count)))
            result.append(Layer(descriptor: descriptor, diffID: diffID, chainID: chainID, layerID: layerID))
        }
        return result
    }

    /// Imports the image into `driver`; returns the top layer's ID.
    public func importImage(into driver: some DiffDriver, progress: ((Layer, Bool) -> Void)? = nil) throws(StorageError) -> LayerID {
        let layers = try layers()
        guard let top = layers.last else { throw invalid("the image has no layers") }
        var created: [LayerID] = []
        do throws(StorageError) {
            var parent: LayerID?
            for layer in layers {
                let marking = driver as? any IncompleteLayerMarking
                if driver.exists(layer.layerID), let marking, marking.isIncomplete(layer.layerID) {
                    guard marking.isAbandoned(layer.layerID) else {
                        throw StorageError(.busy, "import layer \(layer.layerID)",
                                           reason: "another process is importing this layer; try again when it is done")
                    }
                    // An earlier import died between creating this layer and filling it.
                    try driver.remove(layer.layerID)
                }
                if driver.exists(layer.layerID) {
                    progress?(layer, true)
                } else {
                    try verifyBlob(layer.descriptor)
                    var options = CreateOptions()
                    options.incomplete = true
                    try driver.create(layer.layerID, parent: parent, options: options)
                    created.append(layer.layerID)
                    try applyVerified(layer, parent: parent, to: driver)
                    try marking?.markComplete(layer.layerID)
                    progress?(layer, false)
                }
                parent = layer.layerID
            }
        } catch {
            for id in created.reversed() { try? driver.remove(id) }
            throw error
        }
        return top.layerID
    }

    // MARK: - Reading the layout

    private func selectManifest() throws(StorageError) -> OCIManifest {
        let indexURL = layout.appendingPathComponent("index.json")
        let index: OCIIndex = try decode(file: indexURL, what: "index.json")
        var candidates = index.manifests
        if let tag {
            candidates = candidates.filter { $0.referenceName == tag }
            guard !candidates.isEmpty else {
                let tags = index.manifests.compactMap(\.referenceName)
                throw StorageError(.notFound, "import image", path: indexURL.path, reason:
                    "no image tagged '\(tag)' (tags: \(tags.isEmpty ? "none" : tags.joined(separator: ", ")))")
            }
        }
        guard candidates.count == 1, var descriptor = candidates.first else {
            throw invalid("the layout holds \(candidates.count) images; name one as DIR:TAG")
        }
        // An image index inside the layout: take the linux image for this machine.
        while descriptor.mediaType == MediaType.index || descriptor.mediaType == MediaType.dockerManifestList {
            let nested: OCIIndex = try decode(blob: descriptor, what: "image index")
            guard let match = nested.manifests.first(where: { $0.platform.map { $0.os == "linux" && $0.architecture == Self.architecture } ?? false })
                ?? (nested.manifests.count == 1 ? nested.manifests.first : nil)
            else {
                throw unsupported("no linux/\(Self.architecture) image in the index \(descriptor.digest)")
            }
            descriptor = match
        }
        guard descriptor.mediaType == MediaType.manifest || descriptor.mediaType == MediaType.dockerManifest else {
            throw unsupported("manifest media type \(descriptor.mediaType)")
        }
        return try decode(blob: descriptor, what: "manifest")
    }

    private static var architecture: String {
        #if arch(x86_64)
        "amd64"
        #elseif arch(arm64)
        "arm64"
        #else
        "unknown"
        #endif
    }

    /// The path of a blob in the layout.
    func blobURL(_ digest: String) throws(StorageError) -> URL {
        guard Self.isSHA256(digest) else { throw unsupported("digest \(digest) (only sha256 is supported)") }
        return layout.appendingPathComponent("blobs/sha256/" + digest.dropFirst("sha256:".count))
    }

    private func decode<T: Decodable>(blob descriptor: OCIDescriptor, what: String) throws(StorageError) -> T {
        let url = try blobURL(descriptor.digest)
        let data = try read(url)
        let actual = "sha256:" + Self.sha256Hex(data)
        guard actual == descriptor.digest else {
            throw StorageError(.corrupt, "import image", path: url.path, reason: "the \(what) blob's digest is \(actual), not \(descriptor.digest)")
        }
        return try parse(data, url: url, what: what)
    }

    private func decode<T: Decodable>(file url: URL, what: String) throws(StorageError) -> T {
        try parse(try read(url), url: url, what: what)
    }

    private func parse<T: Decodable>(_ data: Data, url: URL, what: String) throws(StorageError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw StorageError(.invalidArgument, "import image", path: url.path, reason: "the \(what) is not valid: \(error)")
        }
    }

    private func read(_ url: URL) throws(StorageError) -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            throw StorageError(.notFound, "import image", path: url.path, reason: "cannot read the blob: it is missing or unreadable")
        }
    }

    // MARK: - Layers

    /// Hashes a layer blob in 1 MiB reads and compares with its descriptor.
    private func verifyBlob(_ descriptor: OCIDescriptor) throws(StorageError) {
        let url = try blobURL(descriptor.digest)
        let fd: FileDescriptor
        do throws(Errno) {
            fd = try FileDescriptor.currentWorkingDirectory.open(at: FilePath(url.path), .readOnly)
        } catch {
            throw StorageError(.notFound, "import image", path: url.path, reason: "the layer blob is missing", errno: error)
        }
        defer { fd.closeQuietly() }
        var hasher = SHA256()
        var size: Int64 = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n: Int
            do throws(Errno) { n = try fd.readSome(into: buffer) } catch {
                throw StorageError("read layer blob", path: url.path, errno: error)
            }
            if n == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            size += Int64(n)
        }
        let actual = "sha256:" + Self.hex(hasher.finalize())
        guard actual == descriptor.digest, size == descriptor.size else {
            throw StorageError(.corrupt, "import image", path: url.path, reason:
                "the layer blob's digest is \(actual) (\(size) bytes), not \(descriptor.digest) (\(descriptor.size) bytes)")
        }
    }

    /// Applies a layer while hashing its uncompressed stream, and checks the diff ID.
    private func applyVerified(_ layer: Layer, parent: LayerID?, to driver: some DiffDriver) throws(StorageError) {
        let url = try blobURL(layer.descriptor.digest)
        let stream = try UncompressedStream(path: FilePath(url.path))
        defer { stream.close() }
        _ = try driver.applyDiff(layer.layerID, parent: parent, from: stream.output, options: ApplyDiffOptions())
        let digest = try stream.finish()
        guard digest == layer.diffID else {
            throw StorageError(.corrupt, "import image", path: url.path, reason:
                "the layer's uncompressed digest is \(digest), not the configuration's diff ID \(layer.diffID)")
        }
    }

    // MARK: - Helpers

    static func isSHA256(_ digest: String) -> Bool {
        digest.hasPrefix("sha256:") && digest.count == 71
            && digest.dropFirst(7).allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }
    }

    static func sha256Hex(_ data: Data) -> String { hex(SHA256.hash(data: data)) }

    static func hex(_ digest: SHA256.Digest) -> String {
        digest.map { byte in
            let h = String(byte, radix: 16)
            return byte < 16 ? "0" + h : h
        }.joined()
    }

    private func invalid(_ reason: String) -> StorageError {
        StorageError(.invalidArgument, "import image", path: layout.path, reason: reason)
    }

    private func unsupported(_ what: String) -> StorageError {
        StorageError(.unsupported, "import image", path: layout.path, reason: "unsupported \(what)")
    }
}
