import FoundationEssentials
import GraphDriver
import StrataSystem
import SystemPackage

/// What `strata import` is asked to read: a path and, when the image holds several images, which
/// one, written as skopeo writes references or as a plain `PATH[:TAG]`.
///
/// - `oci:PATH[:REF]`, `oci-archive:PATH[:REF]`, `docker-archive:PATH[:REF]`: the path ends at
///   the first colon, as in skopeo, so `REF` may hold colons (`localhost/minbase:1`). A
///   docker-archive may also be given `@N`, the N-th image of its `manifest.json`.
/// - A plain path, whole when it exists; else `PATH:TAG` split at the first colon whose left
///   side exists, so a tag with colons works there too.
///
/// The transport names the way the reference is split, not the format: what the path holds is
/// read from its contents (a directory is a layout; a tar holding `index.json` is an oci-archive;
/// one holding `manifest.json` a docker-archive). When a tar holds both (as `docker save`
/// writes since Docker 25), `docker-archive:` prefers `manifest.json` and the others `index.json`.
public struct ImageReference: Sendable, Hashable, CustomStringConvertible {
    /// How the reference was written.
    public enum Transport: String, Sendable, Hashable, CaseIterable {
        case oci, ociArchive = "oci-archive", dockerArchive = "docker-archive"
    }

    /// The transport prefix, `nil` for a plain path.
    public var transport: Transport?
    /// The layout directory or archive file.
    public var path: String
    /// The image asked for: a ref name or repository tag, or `@N` for a docker-archive.
    public var tag: String?

    /// A reference from its parts.
    public init(transport: Transport? = nil, path: String, tag: String?) {
        self.transport = transport
        self.path = path
        self.tag = tag
    }

    /// Parses a reference as described above; `exists` decides which plain-path split is meant.
    public init(parsing text: String, exists: (String) -> Bool = ImageReference.pathExists) {
        for transport in Transport.allCases where text.hasPrefix(transport.rawValue + ":") {
            let rest = text.dropFirst(transport.rawValue.count + 1)
            if let colon = rest.firstIndex(of: ":") {
                let path = String(rest[..<colon])
                let tag = String(rest[rest.index(after: colon)...])
                // `oci:DIR:TAG` where a directory `oci` holds an image tagged `DIR:TAG` (the
                // older plain form) still means that when skopeo's reading names nothing.
                if !exists(path), exists(transport.rawValue) {
                    self.init(path: transport.rawValue, tag: String(rest))
                    return
                }
                self.init(transport: transport, path: path, tag: tag.isEmpty ? nil : tag)
            } else if !exists(String(rest)), exists(transport.rawValue) {
                self.init(path: transport.rawValue, tag: String(rest))
            } else {
                self.init(transport: transport, path: String(rest), tag: nil)
            }
            return
        }
        if exists(text) {
            self.init(path: text, tag: nil)
            return
        }
        var index = text.startIndex
        while let colon = text[index...].firstIndex(of: ":") {
            let path = String(text[..<colon])
            if exists(path) {
                let tag = String(text[text.index(after: colon)...])
                self.init(path: path, tag: tag.isEmpty ? nil : tag)
                return
            }
            index = text.index(after: colon)
        }
        // Nothing exists: keep the older reading (the last colon, when no `/` follows it), so
        // the error names the path the user most likely meant.
        if let colon = text.lastIndex(of: ":"), !text[text.index(after: colon)...].contains("/") {
            self.init(path: String(text[..<colon]), tag: String(text[text.index(after: colon)...]))
        } else {
            self.init(path: text, tag: nil)
        }
    }

    /// Whether anything is at `path` (following symbolic links).
    public static func pathExists(_ path: String) -> Bool {
        guard !path.isEmpty else { return false }
        return (try? FileDescriptor.currentWorkingDirectory.status(at: FilePath(path), followSymlinks: true)) != nil
    }

    /// The reference as it would be written back.
    public var description: String {
        (transport.map { $0.rawValue + ":" } ?? "") + path + (tag.map { ":" + $0 } ?? "")
    }
}
