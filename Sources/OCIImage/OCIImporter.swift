import Crypto
import FoundationEssentials
import GraphDriver
import StrataSystem
import SystemPackage

/// Imports an image into a driver as a chain of layers named by their chain IDs, from an OCI
/// image layout directory, an oci-archive tarball or a docker-archive tarball (what `docker save`
/// and `podman save` write), told apart by their contents.
///
/// Archives are read in place with libarchive: one pass indexes the members' headers and keeps
/// the small JSON members, and each layer is streamed into the applier by a pass of its own;
/// nothing is unpacked to disk. Every blob's digest is checked (in a layout before it is used; in an archive
/// while it is applied), and every layer's uncompressed digest (its diff ID) is checked against
/// the image configuration while it is applied. Layers that are already present are reused.
/// When anything fails, the layers this import created are removed again: nothing
/// half-imported stays behind.
public struct OCIImporter {
    /// What to import.
    public let reference: ImageReference
    /// Where the image is (a layout directory, or an archive file).
    public var layout: URL { URL(fileURLWithPath: reference.path) }
    /// The image to import (`org.opencontainers.image.ref.name`, a docker-archive's `RepoTags`
    /// entry, or `@N`); `nil` when the image holds one.
    public var tag: String? { reference.tag }

    /// Parses a reference: `PATH[:TAG]`, `oci:PATH[:REF]`, `oci-archive:PATH[:REF]` or
    /// `docker-archive:PATH[:REF]` (see ``ImageReference``).
    public init(reference: String) {
        self.reference = ImageReference(parsing: reference)
    }

    /// Imports what `reference` names.
    public init(_ reference: ImageReference) {
        self.reference = reference
    }

    /// Imports the image tagged `tag` (or the only one) from a layout directory or an archive.
    public init(layout: URL, tag: String?) {
        reference = ImageReference(path: layout.path, tag: tag)
    }

    /// One layer of the image, with the IDs it gets in the store.
    public struct Layer: Sendable, Hashable {
        /// The layer blob's descriptor. For a docker-archive, whose manifest has none, the digest
        /// is the one its member name gives or else the diff ID, and the size the member's.
        public var descriptor: OCIDescriptor
        public var diffID: String
        public var chainID: String
        /// The store's layer ID: the chain ID's hex digits.
        public var layerID: LayerID
        /// Where its bytes are.
        var blob: LayerBlob
    }

    /// Where a layer blob's bytes are.
    enum LayerBlob: Sendable, Hashable {
        /// A file of a layout, checked against the descriptor before it is applied.
        case file(URL)
        /// A member of an archive; its bytes are checked against `digest` (when the archive
        /// gives one) while it is applied.
        case member(name: String, ArchiveIndex.Member, digest: String?)
    }

    /// The image's layers, bottom first, after checking the index, manifest and config digests.
    public func layers() throws(StorageError) -> [Layer] {
        try open().layers
    }

    /// Imports the image into `driver`; returns the top layer's ID.
    public func importImage(into driver: some DiffDriver, progress: ((Layer, Bool) -> Void)? = nil) throws(StorageError) -> LayerID {
        let image = try open()
        let layers = image.layers
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
                    if case .file(let url) = layer.blob { try verifyBlob(layer.descriptor, at: url) }
                    var options = CreateOptions()
                    options.incomplete = true
                    try driver.create(layer.layerID, parent: parent, options: options)
                    created.append(layer.layerID)
                    try applyVerified(layer, parent: parent, to: driver, archive: image.archive)
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

    // MARK: - Layers

    /// Hashes a layer blob in 1 MiB reads and compares with its descriptor.
    private func verifyBlob(_ descriptor: OCIDescriptor, at url: URL) throws(StorageError) {
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
            let n: Int = try attempt("read layer blob", url.path) { () throws(Errno) in
                try fd.readSome(into: buffer)
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

    /// Applies a layer while hashing its uncompressed stream, and checks the diff ID (and, for
    /// an archive's member, the blob's digest and size).
    private func applyVerified(_ layer: Layer, parent: LayerID?, to driver: some DiffDriver,
                               archive: ImageArchive?) throws(StorageError) {
        let stream: UncompressedStream
        let location: String
        var expected: (digest: String, size: Int64)?
        switch layer.blob {
        case .file(let url):
            location = url.path
            stream = try UncompressedStream(path: FilePath(url.path))
        case .member(let name, let member, let digest):
            guard let archive else { throw invalid("no archive for the layer \(name)") }
            location = archive.path + "!" + name
            expected = digest.map { ($0, member.size) }
            stream = try UncompressedStream(archive: archive.path, ordinal: member.ordinal, path: location)
        }
        defer { stream.close() }
        var applyError: StorageError?
        do throws(StorageError) {
            _ = try driver.applyDiff(layer.layerID, parent: parent, from: stream.output, options: ApplyDiffOptions())
        } catch {
            applyError = error
        }
        let finished: Result<String, StorageError>
        do throws(StorageError) { finished = .success(try stream.finish()) } catch { finished = .failure(error) }
        // A wrong blob explains a failed apply or decompression better than their own errors do.
        if let expected, let actual = stream.blob, actual.digest != expected.digest || actual.size != expected.size {
            throw StorageError(.corrupt, "import image", path: location, reason:
                "the layer blob's digest is \(actual.digest) (\(actual.size) bytes), not \(expected.digest) (\(expected.size) bytes)")
        }
        if let applyError { throw applyError }
        let digest = try finished.get()
        guard digest == layer.diffID else {
            throw StorageError(.corrupt, "import image", path: location, reason:
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
}
