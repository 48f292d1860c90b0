import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Writes the entries of one tar stream under one root directory (the applier's staging copy).
///
/// Every path is resolved below the root: parents with `openat2(RESOLVE_IN_ROOT)`, the last
/// component with `*at` calls on the parent that never follow a symlink, after whatever stood
/// there was removed. Open parent directories are cached, and the cache is dropped whenever a
/// directory or symlink that a cached path could run through is removed. The current entry's
/// parent outlives a drop until the entry is done, since the entry is still being written there.
final class LayerExtractor {
    private let root: FileDescriptor
    private let options: ApplyOptions
    private let pool: FileWriterPool?
    /// The host owner of implicitly created parent directories: the mapping's root.
    private let rootOwner: (uid: UInt32, gid: UInt32)
    private var directoryCache: [[UInt8]: FileDescriptor] = [:]
    /// The parent directory of the entry being extracted: a cache drop must not close it.
    private var entryParent: FileDescriptor?
    /// The entry's parent when a cache drop took it out of the cache; closed when the entry is done.
    private var retiredParent: FileDescriptor?
    private var deferredDirectoryTimes: [(path: EntryPath, access: FileTime, modification: FileTime)] = []
    private(set) var size: Int64 = 0

    /// Files above this size are written by the reader as the data streams in, not buffered.
    private static let inlineWriteThreshold: Int64 = 1 << 20
    private static let directoryCacheLimit = 128

    init(root: FileDescriptor, options: ApplyOptions) throws(StorageError) {
        self.root = root
        self.options = options
        guard let pair = options.idMappings.rootPair else {
            throw StorageError(.invalidArgument, "apply diff", reason: "the ID mapping has no host ID for container root (0)")
        }
        rootOwner = pair
        if options.writerThreads > 0 {
            let writers = FileWriterPool(threads: options.writerThreads)
            pool = writers.isRunning ? writers : nil
        } else {
            pool = nil
        }
    }

    deinit {
        for fd in directoryCache.values { fd.closeQuietly() }
        retiredParent?.closeQuietly()
    }

    /// Extracts every entry of `reader`, then waits for the writers and restores directory times.
    func extractAll(from reader: ArchiveReader) throws(StorageError) -> Int {
        var count = 0
        do throws(StorageError) {
            while let entry = try reader.next() {
                count += 1
                do throws(StorageError) {
                    try extract(entry, reader: reader)
                    finishEntry()
                } catch {
                    var located = error
                    if located.path == nil { located.path = entry.pathDescription }
                    located.reason += " (entry at offset \(reader.currentOffset))"
                    throw located
                }
            }
        } catch {
            try? pool?.finish()
            throw error
        }
        try pool?.finish()
        try restoreDirectoryTimes()
        return count
    }

    // MARK: - One entry

    private func extract(_ entry: TarEntry, reader: ArchiveReader) throws(StorageError) {
        let path = try EntryPath(entry.rawPath)
        if path.isRoot {
            guard entry.kind == .directory else {
                throw StorageError(.malformedArchive, "apply diff", path: entry.pathDescription,
                                   reason: "only a directory can stand for the layer root")
            }
            try metadata(for: entry, path: path).apply(to: root, setTimes: false)
            deferredDirectoryTimes.append((path, entry.accessTime, entry.modificationTime))
            return
        }

        let name = path.name
        if options.whiteoutFormat == .overlay && name.starts(with: Whiteout.prefix) {
            try extractWhiteout(entry, path: path)
            return
        }

        let parent = try directory(for: path.parent, create: true)
        entryParent = parent
        let nameFilePath = path.nameFilePath

        if let rawTarget = entry.rawHardlinkTarget {
            try extractHardlink(entry, to: rawTarget, name: nameFilePath, parent: parent)
            return
        }

        switch entry.kind {
        case .regular:
            try extractFile(entry, path: path, name: nameFilePath, parent: parent, reader: reader)
        case .directory:
            // A directory entry over a directory updates it; over anything else, replaces it.
            do throws(Errno) {
                try parent.makeDirectory(at: nameFilePath, permissions: .init(rawValue: 0o700))
            } catch .fileExists {
                if try existingKind(nameFilePath, in: parent, entry: entry) == .directory {
                    let fd = try open(nameFilePath, in: parent, flags: O_RDONLY | O_DIRECTORY | O_NOFOLLOW, entry: entry)
                    defer { fd.closeQuietly() }
                    try metadata(for: entry, path: path).apply(to: fd, setTimes: false)
                    deferredDirectoryTimes.append((path, entry.accessTime, entry.modificationTime))
                    return
                }
                try removeExisting(nameFilePath, in: parent, entry: entry)
                try call(entry) { () throws(Errno) in try parent.makeDirectory(at: nameFilePath, permissions: .init(rawValue: 0o700)) }
            } catch {
                throw StorageError("apply diff", path: entry.pathDescription, errno: error)
            }
            let fd = try open(nameFilePath, in: parent, flags: O_RDONLY | O_DIRECTORY | O_NOFOLLOW, entry: entry)
            try metadata(for: entry, path: path).apply(to: fd, setTimes: false)
            deferredDirectoryTimes.append((path, entry.accessTime, entry.modificationTime))
            cache(fd, for: path)
        case .symlink:
            let target = entry.symlinkTarget ?? []
            try replacing(nameFilePath, in: parent, entry: entry) { () throws(Errno) in
                try parent.makeSymbolicLink(at: nameFilePath, target: target)
            }
            try metadata(for: entry, path: path).apply(at: nameFilePath, in: parent, isSymlink: true)
        case .characterDevice, .blockDevice, .fifo:
            if options.forceMask != nil {
                // Under force_mask the store is meant for a host that cannot make device nodes
                // (and user.* xattrs cannot be set on them): an empty file stands in, and its
                // override_stat says what it is.
                let fd = try replacing(nameFilePath, in: parent, entry: entry) { () throws(Errno) in
                    try parent.open(at: nameFilePath, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, permissions: 0o600)
                }
                defer { fd.closeQuietly() }
                try metadata(for: entry, path: path).apply(to: fd, setTimes: true)
                return
            }
            let device = makeDeviceNumber(major: entry.deviceMajor, minor: entry.deviceMinor)
            try replacing(nameFilePath, in: parent, entry: entry) { () throws(Errno) in
                try parent.makeNode(at: nameFilePath, kind: entry.kind, permissions: .init(rawValue: 0o600), device: device)
            }
            try metadata(for: entry, path: path).apply(at: nameFilePath, in: parent, isSymlink: false)
        case .socket, .unknown:
            // A socket cannot be recreated from a tar; other kinds are not files. Whatever stood
            // at the name still goes, as the entry is later in the stream.
            if let kind = try? parent.status(at: nameFilePath).kind {
                try removeExisting(nameFilePath, in: parent, kind: kind, entry: entry)
            }
        }
    }

    private func extractFile(
        _ entry: TarEntry, path: EntryPath, name: FilePath, parent: FileDescriptor, reader: ArchiveReader
    ) throws(StorageError) {
        let fd = try replacing(name, in: parent, entry: entry) { () throws(Errno) in
            try parent.open(at: name, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, permissions: 0o600)
        }
        size += entry.size
        let meta = try metadata(for: entry, path: path)

        if entry.size > Self.inlineWriteThreshold {
            // Large file: stream it straight to disk, holes and all.
            defer { fd.closeQuietly() }
            try reader.forEachDataBlock { (block, offset) throws(StorageError) in
                try attempt("apply diff", entry.pathDescription) { () throws(Errno) in
                    try fd.writeFully(block, atOffset: offset)
                }
            }
            try attempt("apply diff", entry.pathDescription) { () throws(Errno) in
                try fd.truncate(to: entry.size)
            }
            try meta.apply(to: fd, setTimes: true)
            return
        }

        // Small file: gather its bytes (placing sparse blocks at their offsets) and hand it on.
        let capacity = Int(max(entry.size, 1))
        let data = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        var length = 0
        do throws(StorageError) {
            try reader.forEachDataBlock { (block, offset) throws(StorageError) in
                let end = Int(offset) + block.count
                guard offset >= 0, end <= capacity else {
                    throw StorageError(.malformedArchive, "apply diff", path: entry.pathDescription,
                                       reason: "the entry holds more data than its header's size \(entry.size)")
                }
                if Int(offset) > length { (data.baseAddress! + length).initializeMemory(as: UInt8.self, repeating: 0, count: Int(offset) - length) }
                UnsafeMutableRawBufferPointer(rebasing: data[Int(offset)..<end]).copyMemory(from: block)
                length = max(length, end)
            }
        } catch {
            data.deallocate()
            fd.closeQuietly()
            throw error
        }
        if length < Int(entry.size) {
            (data.baseAddress! + length).initializeMemory(as: UInt8.self, repeating: 0, count: Int(entry.size) - length)
            length = Int(entry.size)
        }
        let job = FileWriterPool.Job(fd: fd, data: data, length: length, metadata: meta)
        if let pool {
            try pool.submit(job)
        } else {
            try FileWriterPool.perform(job)
        }
    }

    private func extractHardlink(_ entry: TarEntry, to rawTarget: [UInt8], name: FilePath, parent: FileDescriptor) throws(StorageError) {
        let target = try EntryPath(rawTarget)
        guard !target.isRoot else {
            throw StorageError(.malformedArchive, "apply diff", path: entry.pathDescription,
                               reason: "a hardlink cannot point at the layer root")
        }
        var cleared = false
        while true {
            // Resolved again after a removal: the removed name may have been on the target's path.
            let targetParent = try directory(for: target.parent, create: false)
            do throws(Errno) {
                try targetParent.makeHardLink(from: target.nameFilePath, to: name, in: parent)
                return
            } catch .fileExists where !cleared {
                try removeExisting(name, in: parent, entry: entry)
                cleared = true
            } catch {
                throw StorageError(
                    error == .noSuchFileOrDirectory ? .malformedArchive : .io, "apply diff", path: entry.pathDescription,
                    reason: "cannot link to '\(target.description)': \(error)", errno: error)
            }
        }
    }

    private func extractWhiteout(_ entry: TarEntry, path: EntryPath) throws(StorageError) {
        let name = path.name
        let parent = try directory(for: path.parent, create: true)
        entryParent = parent
        if name.elementsEqual(Whiteout.opaqueMarker) {
            try attempt("mark opaque directory", path.parent.description) { () throws(Errno) in
                try parent.setExtendedAttribute(Whiteout.opaqueXattr, [UInt8(ascii: "y")])
            }
            return
        }
        if name.starts(with: Whiteout.metaPrefix) {
            // AUFS bookkeeping (.wh..wh.plnk and the like): nothing to extract.
            return
        }
        let hidden = name.dropFirst(Whiteout.prefix.count)
        if hidden.isEmpty || hidden.elementsEqual([UInt8(ascii: ".")]) || hidden.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
            throw StorageError(.unsafePath, "apply diff", path: entry.pathDescription,
                               reason: "a whiteout must name an entry of its own directory")
        }
        let target = path.sibling(named: hidden)
        let targetName = target.nameFilePath
        try replacing(targetName, in: parent, entry: entry) { () throws(Errno) in
            try parent.makeNode(at: targetName, kind: .characterDevice, permissions: .init(rawValue: 0), device: 0)
        }
        var meta = try metadata(for: entry, path: target)
        meta.permissions = 0
        meta.xattrs = []
        try meta.apply(at: targetName, in: parent, isSymlink: false)
    }

    // MARK: - Metadata

    /// The entry's metadata with owners mapped to the host and xattrs filtered and mapped.
    private func metadata(for entry: TarEntry, path: EntryPath) throws(StorageError) -> FileMetadata {
        let mappings = options.idMappings
        guard let owner = mappings.toHost(uid: entry.uid, gid: entry.gid) else {
            throw StorageError(.invalidArgument, "apply diff", path: entry.pathDescription,
                               reason: "owner \(entry.uid):\(entry.gid) is outside the layer's ID mapping")
        }
        var xattrs: [(name: String, value: [UInt8])] = []
        var hasAccessACL = false, hasDefaultACL = false
        for (name, value) in entry.xattrs {
            // Overlay's own attributes only ever come from whiteout conversion: a stream that
            // sets them could redirect lookups or hide lower files.
            if name.hasPrefix("trusted.overlay.") || name.hasPrefix("user.overlay.") { continue }
            if name == OverrideStat.xattrName && options.forceMask != nil { continue }
            var value = value
            if !mappings.isIdentity {
                if name == "security.capability", let mapped = FileCapability.mappingRootID(value, with: { IDMappings.hostID($0, mappings.uidMap) }) {
                    value = mapped
                } else if name == "system.posix_acl_access" || name == "system.posix_acl_default" {
                    guard let acl = PosixACL(decoding: value)?.mappingIDs(
                        user: { IDMappings.hostID($0, mappings.uidMap) }, group: { IDMappings.hostID($0, mappings.gidMap) })
                    else {
                        throw StorageError(.invalidArgument, "apply diff", path: entry.pathDescription,
                                           reason: "\(name) is malformed or names an ID outside the mapping")
                    }
                    value = acl.encoded()
                }
            }
            if name == "system.posix_acl_access" { hasAccessACL = true }
            if name == "system.posix_acl_default" { hasDefaultACL = true }
            xattrs.append((name, value))
        }
        for (name, acl, present) in [("system.posix_acl_access", entry.accessACL, hasAccessACL),
                                     ("system.posix_acl_default", entry.defaultACL, hasDefaultACL)] {
            guard let acl, !present else { continue }
            var value = acl
            if !mappings.isIdentity, let mapped = PosixACL(decoding: acl)?.mappingIDs(
                user: { IDMappings.hostID($0, mappings.uidMap) }, group: { IDMappings.hostID($0, mappings.gidMap) }) {
                value = mapped.encoded()
            }
            xattrs.append((name, value))
        }
        var permissions = mode_t(entry.permissions)
        if let mask = options.forceMask, entry.kind != .symlink {
            let stat = OverrideStat(uid: owner.uid, gid: owner.gid, permissions: permissions, kind: entry.kind,
                                    deviceMajor: entry.deviceMajor, deviceMinor: entry.deviceMinor)
            xattrs.append((OverrideStat.xattrName, Array(stat.description.utf8)))
            permissions = mask.rawValue
        }
        return FileMetadata(
            uid: owner.uid, gid: owner.gid, permissions: permissions, xattrs: xattrs,
            accessTime: entry.accessTime, modificationTime: entry.modificationTime,
            ignoreChownErrors: options.ignoreChownErrors, path: entry.pathDescription)
    }

    private func restoreDirectoryTimes() throws(StorageError) {
        for (path, access, modification) in deferredDirectoryTimes {
            guard let fd = try? directory(for: path, create: false) else { continue }
            try attempt("restore directory times", path.description) { () throws(Errno) in
                try fd.setTimes(access: access, modification: modification)
            }
        }
    }

    // MARK: - Directories

    /// The open directory at `path` under the root, creating missing components (owned by the
    /// mapping's root, mode 0755) when asked.
    private func directory(for path: EntryPath, create: Bool) throws(StorageError) -> FileDescriptor {
        if path.isRoot { return root }
        if let cached = directoryCache[path.joined] { return cached }
        let flags = O_RDONLY | O_DIRECTORY
        do throws(Errno) {
            let fd = try root.open(at: path.filePath, flags: flags, resolve: [.inRoot, .noMagicLinks])
            cache(fd, for: path)
            return fd
        } catch .noSuchFileOrDirectory where create {
            let parent = try directory(for: path.parent, create: true)
            return try attempt("create parent directory", path.description) { () throws(Errno) in
                try parent.makeDirectory(at: path.nameFilePath, permissions: .init(rawValue: 0o755))
                let fd = try parent.open(at: path.nameFilePath, flags: flags | O_NOFOLLOW)
                try fd.changeOwner(user: UserID(rawValue: rootOwner.uid), group: GroupID(rawValue: rootOwner.gid))
                cache(fd, for: path)
                return fd
            }
        } catch {
            let reason = error == .notDirectory || error == .fileExists || error == .tooManySymbolicLinkLevels
                ? "a component of the parent path is not a directory"
                : error.description
            throw StorageError(error == .noSuchFileOrDirectory ? .notFound : .malformedArchive,
                               "open parent directory", path: path.description, reason: reason, errno: error)
        }
    }

    private func cache(_ fd: FileDescriptor, for path: EntryPath) {
        if directoryCache.count >= Self.directoryCacheLimit { dropDirectoryCache() }
        if let old = directoryCache.updateValue(fd, forKey: path.joined) { old.closeQuietly() }
    }

    private func dropDirectoryCache() {
        for fd in directoryCache.values {
            if fd == entryParent { retiredParent = fd } else { fd.closeQuietly() }
        }
        directoryCache.removeAll(keepingCapacity: true)
    }

    /// Closes the entry's parent if a cache drop retired it while the entry was being written.
    private func finishEntry() {
        entryParent = nil
        if let fd = retiredParent {
            fd.closeQuietly()
            retiredParent = nil
        }
    }

    /// Runs `create`, which makes the entry's file at `name` and fails with `EEXIST` when the
    /// name is taken; then removes whatever stands there and runs it once more. A fresh layer
    /// never has anything in the way, so the common case costs no `fstatat`.
    @discardableResult
    private func replacing<T>(
        _ name: FilePath, in parent: FileDescriptor, entry: TarEntry, _ create: () throws(Errno) -> T
    ) throws(StorageError) -> T {
        do throws(Errno) {
            return try create()
        } catch .fileExists {
            try removeExisting(name, in: parent, entry: entry)
            return try attempt("apply diff", entry.pathDescription) { () throws(Errno) in
                try create()
            }
        } catch {
            throw StorageError("apply diff", path: entry.pathDescription, errno: error)
        }
    }

    /// The kind of file standing at `name`.
    private func existingKind(_ name: FilePath, in parent: FileDescriptor, entry: TarEntry) throws(StorageError) -> FileKind {
        return try attempt("replace existing entry", entry.pathDescription) { () throws(Errno) in
            try parent.status(at: name).kind
        }
    }

    /// Removes whatever stands at `name` (found taken by a create).
    private func removeExisting(_ name: FilePath, in parent: FileDescriptor, entry: TarEntry) throws(StorageError) {
        try removeExisting(name, in: parent, kind: try existingKind(name, in: parent, entry: entry), entry: entry)
    }

    private func removeExisting(_ name: FilePath, in parent: FileDescriptor, kind: FileKind, entry: TarEntry) throws(StorageError) {
        if kind == .directory || kind == .symlink { dropDirectoryCache() }
        try attempt("replace existing entry", entry.pathDescription) { () throws(Errno) in
            try parent.removeTree(at: name, kind: kind)
        }
    }

    // MARK: - Helpers

    private func open(_ name: FilePath, in parent: FileDescriptor, flags: Int32, mode: mode_t = 0, entry: TarEntry) throws(StorageError) -> FileDescriptor {
        return try attempt("apply diff", entry.pathDescription) { () throws(Errno) in
            return try parent.open(at: name, flags: flags, permissions: mode)
        }
    }

    private func call(_ entry: TarEntry, _ body: () throws(Errno) -> Void) throws(StorageError) {
        try attempt("apply diff", entry.pathDescription) { () throws(Errno) in
            try body()
        }
    }
}
