import FoundationEssentials
import GraphDriver
import StreamCodecs

/// One entry of a docker-archive's `manifest.json`, as `docker save` and `podman save` write it.
struct DockerArchiveManifest: Codable {
    var Config: String
    var RepoTags: [String]?
    var Layers: [String]
}

/// Reading the image out of a docker-archive: `manifest.json`, the configuration it names and
/// the layer tars (plain or gzip), by the members' names.
struct DockerArchiveReader {
    let archive: ImageArchive

    /// The image entry `tag` names (a repository tag, or `@N`), or the only one.
    func selectEntry(tag: String?) throws(StorageError) -> DockerArchiveManifest {
        guard let data = try archive.contents(of: "manifest.json") else {
            throw archive.missing("manifest.json", what: "manifest")
        }
        let entries: [DockerArchiveManifest]
        do { entries = try JSONDecoder().decode([DockerArchiveManifest].self, from: data) } catch {
            throw StorageError(.invalidArgument, "import image", path: archive.path + "!manifest.json",
                               reason: "the manifest is not valid: \(error)")
        }
        let tags = entries.flatMap { $0.RepoTags ?? [] }
        let held = tags.isEmpty ? "\(entries.count) untagged image\(entries.count == 1 ? "" : "s")" : tags.joined(separator: ", ")
        if let tag {
            if tag.hasPrefix("@") {
                guard let n = Int(tag.dropFirst()), entries.indices.contains(n) else {
                    throw StorageError(.notFound, "import image", path: archive.path,
                                       reason: "no image \(tag) in the archive (it holds \(entries.count): \(held))")
                }
                return entries[n]
            }
            let exact = entries.filter { ($0.RepoTags ?? []).contains(tag) }
            let matches = exact.isEmpty ? entries.filter { ($0.RepoTags ?? []).contains { ImageTag.matches($0, tag) } } : exact
            guard let entry = matches.first else {
                throw StorageError(.notFound, "import image", path: archive.path,
                                   reason: "no image tagged '\(tag)' (tags: \(held))")
            }
            return entry
        }
        guard entries.count == 1, let entry = entries.first else {
            throw StorageError(.invalidArgument, "import image", path: archive.path, reason:
                "the archive holds \(entries.count) images (\(held)); name one as docker-archive:PATH:TAG or PATH:@N")
        }
        return entry
    }

    /// The configuration's bytes, checked against its digest when its name carries one
    /// (`HEX.json`, `blobs/sha256/HEX`).
    func configuration(of entry: DockerArchiveManifest) throws(StorageError) -> Data {
        guard let data = try archive.contents(of: entry.Config) else {
            throw missing(entry.Config, what: "image configuration")
        }
        if let expected = Self.digest(inName: entry.Config) {
            let actual = "sha256:" + OCIImporter.sha256Hex(data)
            guard actual == expected else {
                throw StorageError(.corrupt, "import image", path: archive.path + "!" + entry.Config,
                                   reason: "the image configuration's digest is \(actual), not \(expected)")
            }
        }
        return data
    }

    /// A layer member's location, and the blob digest its name promises when it names one
    /// (`blobs/sha256/HEX`, or `HEX.tar` as podman and skopeo write it). A `<id>/layer.tar`
    /// of older `docker save` names none: its diff ID, checked while it is applied, is then
    /// the layer's only digest.
    func layerMember(_ name: String) throws(StorageError) -> (member: ArchiveIndex.Member, digest: String?) {
        guard let member = archive.index.member(name) else { throw missing(name, what: "layer") }
        return (member, Self.digest(inName: name))
    }

    private func missing(_ name: String, what: String) -> StorageError {
        archive.missing(name, what: what)
    }

    /// `blobs/sha256/HEX` (Docker 25 and later), `HEX.tar` or `HEX.json`: the digest the name gives.
    static func digest(inName name: String) -> String? {
        let normalized = TarMembers.normalize(name)
        var hex = Substring(normalized)
        if hex.hasPrefix("blobs/sha256/") {
            hex = hex.dropFirst("blobs/sha256/".count)
        } else if hex.hasSuffix(".json") || hex.hasSuffix(".tar"), !hex.contains("/") {
            hex = hex.dropLast(hex.hasSuffix(".tar") ? 4 : 5)
        } else {
            return nil
        }
        let digest = "sha256:" + hex
        return OCIImporter.isSHA256(digest) ? digest : nil
    }
}

/// Comparing image names as people write them: `debian:12` matches `docker.io/library/debian:12`,
/// `minbase:1` matches `localhost/minbase:1`.
enum ImageTag {
    static func matches(_ stored: String, _ asked: String) -> Bool {
        stored == asked || normalize(stored) == normalize(asked)
    }

    static func normalize(_ name: String) -> String {
        for prefix in ["docker.io/library/", "docker.io/", "localhost/"] where name.hasPrefix(prefix) {
            return String(name.dropFirst(prefix.count))
        }
        return name
    }
}
