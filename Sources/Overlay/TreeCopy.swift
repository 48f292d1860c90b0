import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Descriptor-anchored walks and copies of layer trees: no path is resolved twice and no
/// symlink is ever followed.
enum TreeCopy {
    /// Copies everything inside `source` into the empty directory `destination`, keeping
    /// owners, modes, times, extended attributes (overlay's opaque marks included), device
    /// nodes (overlay's whiteouts) and hard links.
    static func copyContents(of source: FilePath, to destination: FilePath) throws(StorageError) {
        try attempt("copy layer contents", source) { () throws(Errno) in
            let src = try FileDescriptor.openDirectory(source)
            defer { src.closeQuietly() }
            let dst = try FileDescriptor.openDirectory(destination)
            defer { dst.closeQuietly() }
            var links: [UInt64: FilePath] = [:]
            try copyDirectory(src, dst, root: dst, relative: FilePath(""), links: &links)
            try copyMetadata(from: src, name: nil, to: dst, name: nil, status: try src.status())
        }
    }

    private static func copyDirectory(_ src: FileDescriptor, _ dst: FileDescriptor, root: FileDescriptor,
                                      relative: FilePath, links: inout [UInt64: FilePath]) throws(Errno) {
        for entry in try src.directoryEntries() {
            let name = FilePath(entry.name)
            let st = try src.status(at: name)
            let path = relative.isEmpty ? name : relative.appending(entry.name)
            switch st.kind {
            case .directory:
                try dst.makeDirectory(at: name, permissions: .init(rawValue: 0o700))
                let s = try src.openDirectory(at: name)
                defer { s.closeQuietly() }
                let d = try dst.openDirectory(at: name)
                defer { d.closeQuietly() }
                try copyDirectory(s, d, root: root, relative: path, links: &links)
                try copyMetadata(from: s, name: nil, to: d, name: nil, status: st)
                continue
            case .regular where st.linkCount > 1 && links[st.inode] != nil:
                try root.makeHardLink(from: links[st.inode]!, to: path)
                continue
            default:
                try copyEntry(from: src, to: dst, name: name, status: st)
                if st.kind == .regular && st.linkCount > 1 { links[st.inode] = path }
            }
        }
    }

    /// Copies one non-directory entry with its metadata.
    static func copyEntry(from src: FileDescriptor, to dst: FileDescriptor, name: FilePath, status st: FileStatus) throws(Errno) {
        switch st.kind {
        case .regular:
            let input = try src.open(at: name, flags: O_RDONLY | O_NOFOLLOW)
            defer { input.closeQuietly() }
            let output = try dst.open(at: name, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, permissions: 0o600)
            defer { output.closeQuietly() }
            try copyBytes(from: input, to: output)
        case .symlink:
            try dst.makeSymbolicLink(at: name, target: try src.readSymbolicLink(at: name))
        default:
            try dst.makeNode(at: name, kind: st.kind, permissions: .init(rawValue: 0o600), device: st.specialDevice)
        }
        try copyMetadata(from: src, name: name, to: dst, name: name, status: st)
    }

    private static func copyBytes(from input: FileDescriptor, to output: FileDescriptor) throws(Errno) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = try input.readSome(into: buffer)
            if n == 0 { return }
            try output.writeFully(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
    }

    /// Owner, then mode (chown clears setuid bits), extended attributes, times.
    static func copyMetadata(from src: FileDescriptor, name srcName: FilePath?, to dst: FileDescriptor,
                                     name dstName: FilePath?, status st: FileStatus) throws(Errno) {
        let target = dstName ?? FilePath(".")
        try dst.changeOwner(at: target, user: st.userID, group: st.groupID)
        if st.kind != .symlink {
            try dst.changeMode(at: target, permissions: st.permissions)
        }
        let names = srcName.map { (try? src.extendedAttributeNames(at: $0)) ?? [] } ?? ((try? src.extendedAttributeNames()) ?? [])
        for attribute in names where !(st.kind == .symlink && attribute.hasPrefix("user.")) {
            let value = srcName == nil ? try src.extendedAttribute(attribute) : try src.extendedAttribute(attribute, at: srcName!)
            guard let value else { continue }
            if let dstName { try dst.setExtendedAttribute(attribute, value, at: dstName) } else { try dst.setExtendedAttribute(attribute, value) }
        }
        try dst.setTimes(at: target, access: st.accessTime, modification: st.modificationTime)
    }
}
