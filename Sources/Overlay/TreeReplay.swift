import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The two tree operations of an apply through a mount: cloning an upper directory with hard
/// links, and replaying an extracted layer (AUFS whiteouts kept as `.wh.` files) onto a merged
/// view.
enum TreeReplay {
    static let whiteoutPrefix = ".wh."
    static let opaqueMarker = ".wh..wh..opq"

    /// Makes `destination` (empty) a copy of `source` whose files are hard links to the
    /// originals and whose directories are new, with the originals' metadata and xattrs.
    ///
    /// The copy may serve as an overlay upper directory as long as no file in it is written in
    /// place: `replay` only ever replaces files, so the originals stay untouched.
    static func cloneWithHardLinks(_ source: FileDescriptor, into destination: FileDescriptor) throws(Errno) {
        for entry in try source.directoryEntries() {
            let name = FilePath(entry.name)
            // Only directories need their status (for their metadata); other kinds are linked.
            let kind = entry.kind == .unknown ? try source.status(at: name).kind : entry.kind
            if kind == .directory {
                let st = try source.status(at: name)
                try destination.makeDirectory(at: name, permissions: .init(rawValue: 0o700))
                let s = try source.openDirectory(at: name)
                defer { s.closeQuietly() }
                let d = try destination.openDirectory(at: name)
                defer { d.closeQuietly() }
                try cloneWithHardLinks(s, into: d)
                try TreeCopy.copyMetadata(from: s, name: nil, to: d, name: nil, status: st)
            } else {
                try source.makeHardLink(from: name, to: name, in: destination)
            }
        }
    }

    /// Replays the extracted tree `source` onto `target` (a mounted merged view): `.wh.NAME`
    /// removes NAME, `.wh..wh..opq` empties the directory of what was there before, and every
    /// other entry replaces what is at its path (directories are merged).
    ///
    /// Hard links within the tree are linked again on `target`, through its descriptor and the
    /// first copy's path relative to it: no descriptor is held per link group.
    static func replay(_ source: FileDescriptor, onto target: FileDescriptor) throws(Errno) {
        var links: [UInt64: FilePath] = [:]
        try replayDirectory(source, onto: target, root: target, relative: FilePath(""), links: &links)
    }

    private static func replayDirectory(_ source: FileDescriptor, onto target: FileDescriptor, root: FileDescriptor,
                                        relative: FilePath, links: inout [UInt64: FilePath]) throws(Errno) {
        let entries = try source.directoryEntries()
        let names = Set(entries.map(\.name))
        if names.contains(opaqueMarker) {
            for existing in try target.directoryEntries() where !names.contains(existing.name) {
                try target.removeTree(at: FilePath(existing.name), kind: existing.kind)
            }
        }
        for entry in entries where entry.name.hasPrefix(whiteoutPrefix) && entry.name != opaqueMarker {
            try target.removeTree(at: FilePath(String(entry.name.dropFirst(whiteoutPrefix.count))))
        }
        for entry in entries where !entry.name.hasPrefix(whiteoutPrefix) {
            let name = FilePath(entry.name)
            let path = relative.isEmpty ? name : relative.appending(entry.name)
            let st = try source.status(at: name)
            let existing = try? target.status(at: name)
            if st.kind == .directory {
                if existing?.kind != .directory {
                    if existing != nil { try target.removeTree(at: name) }
                    try target.makeDirectory(at: name, permissions: .init(rawValue: 0o700))
                }
                let s = try source.openDirectory(at: name)
                defer { s.closeQuietly() }
                let t = try target.openDirectory(at: name)
                defer { t.closeQuietly() }
                try replayDirectory(s, onto: t, root: root, relative: path, links: &links)
                try TreeCopy.copyMetadata(from: s, name: nil, to: t, name: nil, status: st)
                continue
            }
            if let existing { try target.removeTree(at: name, kind: existing.kind) }
            if st.kind == .regular, st.linkCount > 1, let first = links[st.inode] {
                try root.makeHardLink(from: first, to: path)
                continue
            }
            try TreeCopy.copyEntry(from: source, to: target, name: name, status: st)
            if st.kind == .regular, st.linkCount > 1 { links[st.inode] = path }
        }
    }
}
