import FoundationEssentials
import GraphDriver
import StrataSystem
import SystemPackage

/// Reading an image's description (index, manifest, configuration) from a layout directory,
/// an oci-archive or a docker-archive, into the list of layers to apply.
extension OCIImporter {
    /// An image opened for import: its layers, and the archive they are read from, if any.
    struct OpenedImage {
        var layers: [Layer]
        var archive: ImageArchive?
    }

    /// Opens the reference's path and reads the image's layers, telling the format by content.
    func open() throws(StorageError) -> OpenedImage {
        let path = reference.path
        let status: FileStatus
        do throws(Errno) {
            status = try FileDescriptor.currentWorkingDirectory.status(at: FilePath(path), followSymlinks: true)
        } catch {
            throw StorageError(.notFound, "import image", path: path, reason: "no such image layout or archive", errno: error)
        }
        if status.kind == .directory {
            return OpenedImage(layers: try ociLayers(in: .directory(URL(fileURLWithPath: path))), archive: nil)
        }
        guard status.kind == .regular else {
            throw invalid("a \(status.kind) is neither an OCI layout directory nor an image archive")
        }
        let archive = try ImageArchive(path: path)
        let hasIndex = archive.index.member("index.json") != nil
        let hasManifest = archive.index.member("manifest.json") != nil
        guard hasIndex || hasManifest else {
            if archive.index.endMarkerMissing { throw archive.missing("index.json", what: "index.json or manifest.json") }
            throw invalid("the tar holds neither index.json (an oci-archive) nor manifest.json (a docker-archive), but \(archive.sampleOfMembers)")
        }
        let dockerFirst = hasManifest && (!hasIndex || reference.transport == .dockerArchive)
        do throws(StorageError) {
            let layers = dockerFirst ? try dockerLayers(in: archive) : try ociLayers(in: .archive(archive))
            return OpenedImage(layers: layers, archive: archive)
        } catch where error.code == .notFound && hasIndex && hasManifest && reference.tag != nil {
            // Docker 25's archives have both: a tag may be in either one's naming.
            let layers = dockerFirst ? try ociLayers(in: .archive(archive)) : try dockerLayers(in: archive)
            return OpenedImage(layers: layers, archive: archive)
        }
    }

    // MARK: - OCI layouts and oci-archives

    private func ociLayers(in store: OCIBlobStore) throws(StorageError) -> [Layer] {
        let manifest = try selectManifest(in: store)
        guard Self.isSHA256(manifest.config.digest) else {
            throw unsupported("config digest \(manifest.config.digest) (only sha256 is supported)")
        }
        let config: OCIConfiguration = try decode(blob: manifest.config, in: store, what: "image configuration")
        guard config.rootfs.diff_ids.count == manifest.layers.count else {
            throw invalid("the manifest lists \(manifest.layers.count) layers but the configuration \(config.rootfs.diff_ids.count) diff IDs")
        }
        var blobs: [(OCIDescriptor, LayerBlob)] = []
        for descriptor in manifest.layers {
            guard MediaType.layers.contains(descriptor.mediaType) else {
                throw unsupported("layer media type \(descriptor.mediaType) of \(descriptor.digest)")
            }
            guard Self.isSHA256(descriptor.digest) else {
                throw unsupported("digest \(descriptor.digest) (only sha256 is supported)")
            }
            let name = OCIBlobStore.blobName(descriptor.digest)
            switch store {
            case .directory(let url):
                blobs.append((descriptor, .file(url.appendingPathComponent(name))))
            case .archive(let archive):
                guard let member = archive.index.member(name) else {
                    throw archive.missing(name, what: "layer blob")
                }
                blobs.append((descriptor, .member(name: name, member, digest: descriptor.digest)))
            }
        }
        return try chain(blobs, diffIDs: config.rootfs.diff_ids)
    }

    private func selectManifest(in store: OCIBlobStore) throws(StorageError) -> OCIManifest {
        guard let indexData = try store.read("index.json") else {
            throw store.missing("index.json", what: "index (not an OCI image layout?)")
        }
        let index: OCIIndex = try parse(indexData, path: store.location("index.json"), what: "index.json")
        var candidates = index.manifests
        let tags = index.manifests.compactMap(\.referenceName)
        if let tag = reference.tag {
            let exact = candidates.filter { $0.referenceName == tag }
            candidates = exact.isEmpty ? candidates.filter { $0.referenceName.map { ImageTag.matches($0, tag) } ?? false } : exact
            guard !candidates.isEmpty else {
                throw StorageError(.notFound, "import image", path: store.location("index.json"), reason:
                    "no image tagged '\(tag)' (tags: \(tags.isEmpty ? "none" : tags.joined(separator: ", ")))")
            }
        }
        guard candidates.count == 1, var descriptor = candidates.first else {
            throw invalid("the image holds \(candidates.count) images (tags: \(tags.isEmpty ? "none" : tags.joined(separator: ", "))); name one as PATH:TAG")
        }
        // An image index inside the layout: take the linux image for this machine.
        while descriptor.mediaType == MediaType.index || descriptor.mediaType == MediaType.dockerManifestList {
            let nested: OCIIndex = try decode(blob: descriptor, in: store, what: "image index")
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
        return try decode(blob: descriptor, in: store, what: "manifest")
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

    private func decode<T: Decodable>(blob descriptor: OCIDescriptor, in store: OCIBlobStore, what: String) throws(StorageError) -> T {
        guard Self.isSHA256(descriptor.digest) else { throw unsupported("digest \(descriptor.digest) (only sha256 is supported)") }
        let name = OCIBlobStore.blobName(descriptor.digest)
        guard let data = try store.read(name) else {
            throw store.missing(name, what: "\(what) blob")
        }
        let actual = "sha256:" + Self.sha256Hex(data)
        guard actual == descriptor.digest else {
            throw StorageError(.corrupt, "import image", path: store.location(name), reason: "the \(what) blob's digest is \(actual), not \(descriptor.digest)")
        }
        return try parse(data, path: store.location(name), what: what)
    }

    // MARK: - docker-archives

    private func dockerLayers(in archive: ImageArchive) throws(StorageError) -> [Layer] {
        let reader = DockerArchiveReader(archive: archive)
        let entry = try reader.selectEntry(tag: reference.tag)
        let configData = try reader.configuration(of: entry)
        let config: OCIConfiguration = try parse(configData, path: archive.path + "!" + entry.Config, what: "image configuration")
        guard config.rootfs.diff_ids.count == entry.Layers.count else {
            throw invalid("manifest.json lists \(entry.Layers.count) layers but the configuration \(config.rootfs.diff_ids.count) diff IDs")
        }
        var blobs: [(OCIDescriptor, LayerBlob)] = []
        for (name, diffID) in zip(entry.Layers, config.rootfs.diff_ids) {
            let (member, digest) = try reader.layerMember(name)
            // Told apart by content when it is applied: plain or gzip.
            let descriptor = OCIDescriptor(mediaType: MediaType.dockerLayer, digest: digest ?? diffID, size: member.size)
            blobs.append((descriptor, .member(name: name, member, digest: digest)))
        }
        return try chain(blobs, diffIDs: config.rootfs.diff_ids)
    }

    // MARK: - Helpers

    /// Names the layers by their chain IDs.
    private func chain(_ blobs: [(OCIDescriptor, LayerBlob)], diffIDs: [String]) throws(StorageError) -> [Layer] {
        var result: [Layer] = []
        var chain: String?
        for ((descriptor, blob), diffID) in zip(blobs, diffIDs) {
            guard Self.isSHA256(diffID) else { throw unsupported("diff ID \(diffID) (only sha256 is supported)") }
            let chainID = chain.map { "sha256:" + Self.sha256Hex(Data(($0 + " " + diffID).utf8)) } ?? diffID
            chain = chainID
            let layerID = try LayerID(String(chainID.dropFirst("sha256:".count)))
            result.append(Layer(descriptor: descriptor, diffID: diffID, chainID: chainID, layerID: layerID, blob: blob))
        }
        return result
    }

    private func parse<T: Decodable>(_ data: Data, path: String, what: String) throws(StorageError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch {
            throw StorageError(.invalidArgument, "import image", path: path, reason: "the \(what) is not valid: \(error)")
        }
    }

    func invalid(_ reason: String) -> StorageError {
        StorageError(.invalidArgument, "import image", path: reference.path, reason: reason)
    }

    func unsupported(_ what: String) -> StorageError {
        StorageError(.unsupported, "import image", path: reference.path, reason: "unsupported \(what)")
    }
}
