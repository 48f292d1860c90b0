import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension LayerChanges {
    /// The changes that turn the tree `old` into the tree `new`, found by comparing both trees
    /// file by file (for layers whose parent is not the layer below them, or drivers without a
    /// native diff). `nil` for `old` lists everything in `new` as `.add`.
    ///
    /// - A path only in `new` is `.add` (and so is everything below it); a path only in `old` is
    ///   `.delete` (only that path: its contents go with it).
    /// - A path in both is `.modify` when the type, permission bits (with setuid, setgid,
    ///   sticky), owner, device number, symlink target or xattrs differ (`trusted.overlay.*` and
    ///   `user.overlay.*` are ignored), or, for anything but a directory, the size or the mtime
    ///   (to the nanosecond). A directory's size and mtime change with its entries, so they are
    ///   not compared: a directory is listed only when its own metadata differs.
    ///
    /// - Returns: the changes sorted by path; paths are absolute (`/etc/passwd`).
    /// - Throws: `StorageError` (`.unsupported`, naming the directory) when a changed name is not
    ///   UTF-8: a `Change` path is a `String`, which would replace its bytes and so name another
    ///   file or none, and the diff would silently miss it.
    public static func naiveChanges(old: FilePath?, new: FilePath) throws(StorageError) -> [Change] {
        func openRoot(_ path: FilePath) throws(StorageError) -> FileDescriptor {
            return try attempt("compare layers", path) { () throws(Errno) in
                try FileDescriptor.openDirectory(path)
            }
        }
        let newRoot = try openRoot(new)
        defer { newRoot.closeQuietly() }
        let oldRoot = try old.map { path throws(StorageError) in try openRoot(path) }
        defer { oldRoot?.closeQuietly() }
        var walk = TreeComparison()
        defer { walk.release() }
        try walk.compare(old: oldRoot, new: newRoot, path: [])
        return walk.changes.sorted()
    }
}

/// The parallel walk behind `LayerChanges.naiveChanges`.
struct TreeComparison {
    private(set) var changes: [Change] = []
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 8)

    private func absolute(_ path: [UInt8]) -> String { "/" + String(decoding: path, as: UTF8.self) }

    /// Frees the scratch buffer.
    func release() { buffer.deallocate() }

    mutating func compare(old: FileDescriptor?, new: FileDescriptor, path: [UInt8]) throws(StorageError) {
        let newList = try DirectoryListing(reading: new, path: absolute(path))
        let oldList = try old.map { fd throws(StorageError) in try DirectoryListing(reading: fd, path: absolute(path)) }
        var i = 0, j = 0
        let oldCount = oldList?.count ?? 0
        while i < newList.count || j < oldCount {
            var order: Int32
            if i == newList.count { order = 1 } else if j == oldCount { order = -1 } else {
                let a = Array(newList.nameBytes(i)), b = Array(oldList!.nameBytes(j))
                order = a.lexicographicallyPrecedes(b) ? -1 : (a == b ? 0 : 1)
            }
            if order > 0 {
                changes.append(Change(path: try changePath(join(path, oldList!.nameBytes(j)), directory: path), kind: .delete))
                j += 1
                continue
            }
            let childPath = join(path, newList.nameBytes(i))
            let text = try changePath(childPath, directory: path)
            try newList.withName(i) { name, _ throws(StorageError) in
                try self.entry(name, old: order == 0 ? old : nil, new: new, path: childPath, text: text)
            }
            i += 1
            if order == 0 { j += 1 }
        }
    }

    /// `path` as a change's absolute path; throws when it is not UTF-8.
    private func changePath(_ path: [UInt8], directory: [UInt8]) throws(StorageError) -> String {
        guard let text = String(validating: path, as: UTF8.self) else {
            let name = path[(directory.isEmpty ? 0 : directory.count + 1)...]
            let escaped = name.map { $0 < 0x80 && $0 >= 0x20 ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16) }.joined()
            throw StorageError(.unsupported, "compare layers", path: absolute(directory),
                               reason: "the name '\(escaped)' is not UTF-8, and a change list cannot carry it (the diff would miss the file)")
        }
        return "/" + text
    }

    private func join(_ path: [UInt8], _ name: ArraySlice<UInt8>) -> [UInt8] {
        var result = path
        if !result.isEmpty { result.append(UInt8(ascii: "/")) }
        result.append(contentsOf: name)
        return result
    }

    /// Compares `name`, present in `new` and, when `old` is given, in `old`.
    private mutating func entry(
        _ name: UnsafePointer<CChar>, old: FileDescriptor?, new: FileDescriptor, path: [UInt8], text: String
    ) throws(StorageError) {
        let (newStatus, oldStatus): (FileStatus, FileStatus?) = try attempt("compare layers", text) { () throws(Errno) in
            let newStatus = try new.status(atRawName: name)
            guard let old else { return (newStatus, nil) }
            return (newStatus, try old.status(atRawName: name))
        }
        if let oldStatus {
            if try differs(name, path: text, old: old!, oldStatus, new: new, newStatus) {
                changes.append(Change(path: text, kind: .modify))
            }
        } else {
            changes.append(Change(path: text, kind: .add))
        }
        guard newStatus.kind == .directory else { return }
        let (newChild, oldChild): (FileDescriptor, FileDescriptor?) = try attempt("compare layers", text) { () throws(Errno) in
            let newChild = try new.open(atRawName: name, flags: O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
            guard let old, oldStatus?.kind == .directory else { return (newChild, nil) }
            do throws(Errno) {
                return (newChild, try old.open(atRawName: name, flags: O_RDONLY | O_DIRECTORY | O_NOFOLLOW))
            } catch {
                newChild.closeQuietly()
                throw error
            }
        }
        defer {
            newChild.closeQuietly()
            oldChild?.closeQuietly()
        }
        try compare(old: oldChild, new: newChild, path: path)
    }

    private func differs(_ name: UnsafePointer<CChar>, path: String, old: FileDescriptor, _ a: FileStatus, new: FileDescriptor, _ b: FileStatus) throws(StorageError) -> Bool {
        if a.kind != b.kind || a.mode != b.mode || a.userID != b.userID || a.groupID != b.groupID { return true }
        if (a.kind == .characterDevice || a.kind == .blockDevice) && a.specialDevice != b.specialDevice { return true }
        if a.kind != .directory && (a.size != b.size || a.modificationTime != b.modificationTime) { return true }
        return try attempt("compare layers", path) { () throws(Errno) in
            if a.kind == .symlink {
                let x = try old.readSymbolicLink(atRawName: name, into: buffer)
                let first = Array(buffer[0..<x])
                let y = try new.readSymbolicLink(atRawName: name, into: buffer)
                if first != Array(buffer[0..<y]) { return true }
            }
            return try attributes(name, in: old) != attributes(name, in: new)
        }
    }

    /// The xattrs that describe the file (overlay's own bookkeeping left out).
    private func attributes(_ name: UnsafePointer<CChar>, in directory: FileDescriptor) throws(Errno) -> [String: [UInt8]] {
        let length = try directory.extendedAttributeNames(atRawName: name, into: buffer)
        if length == 0 { return [:] }
        let list = Array(buffer[0..<length])
        var result: [String: [UInt8]] = [:]
        for raw in list.split(separator: 0) {
            let attribute = String(decoding: raw, as: UTF8.self)
            if attribute.hasPrefix("trusted.overlay.") || attribute.hasPrefix("user.overlay.") { continue }
            let value = try (Array(raw) + [0]).withUnsafeBufferPointer { p throws(Errno) in
                try directory.extendedAttribute(
                    rawName: UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self), atRawName: name, into: buffer)
            }
            if let value { result[attribute] = Array(buffer[0..<value]) }
        }
        return result
    }
}
