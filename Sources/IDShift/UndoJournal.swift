import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// What a rollback of a shift needs, as a file: the undo plan and, for a tree shifted through an
/// overlay mount, the names its upper directory held before.
///
/// The format is binary and byte-safe (file names are any bytes but `/` and NUL, not
/// necessarily UTF-8), little-endian, length-prefixed:
///
/// ```
/// header     "STRATA-SHIFT-UNDO\n" (18 bytes), version u32 = 1, flags u32 (bit 0: names recorded)
/// records    tag u8, then
///   1 directory   path               (the following entries are in it; "" is the root)
///   2 entry       name, fields u8 (1: owner, 2: mode), [uid u32, gid u32], [mode u32],
///                 count u32, count × (attribute name, value)
///   3 name        path               (a name the tree held, below its root)
///   255 end       directories u64, entries u64, names u64, FNV-1a 64 of every byte before the tag
/// bytes      length u32, then the bytes
/// ```
///
/// A journal is valid only with its end record last, its counts and checksum right.
struct UndoJournal: Sendable, Hashable {
    /// The plan that undoes the shift.
    var undo: [DirectoryPlan]
    /// The names below the tree's root before the shift, or `nil` when not recorded.
    var names: [FilePath]?

    static let magic = Array("STRATA-SHIFT-UNDO\n".utf8)
    static let version: UInt32 = 1

    private enum Tag: UInt8 {
        case directory = 1, entry = 2, name = 3, end = 255
    }

    init(undo: [DirectoryPlan], names: [FilePath]? = nil) {
        self.undo = undo
        self.names = names
    }

    // MARK: - Encoding

    func encoded() -> [UInt8] {
        var out = Writer()
        out.bytes.append(contentsOf: Self.magic)
        out.u32(Self.version)
        out.u32(names == nil ? 0 : 1)
        var entryCount: UInt64 = 0
        for plan in undo {
            out.u8(Tag.directory.rawValue)
            out.path(plan.path)
            for entry in plan.entries {
                entryCount += 1
                out.u8(Tag.entry.rawValue)
                out.path(entry.name)
                out.u8((entry.owner != nil ? 1 : 0) | (entry.mode != nil ? 2 : 0))
                if let owner = entry.owner {
                    out.u32(owner.uid)
                    out.u32(owner.gid)
                }
                if let mode = entry.mode { out.u32(UInt32(mode.rawValue)) }
                out.u32(UInt32(entry.attributes.count))
                for attribute in entry.attributes {
                    out.data(Array(attribute.name.utf8))
                    out.data(attribute.value)
                }
            }
        }
        for name in names ?? [] {
            out.u8(Tag.name.rawValue)
            out.path(name)
        }
        let checksum = Self.fnv1a(out.bytes)
        out.u8(Tag.end.rawValue)
        out.u64(UInt64(undo.count))
        out.u64(entryCount)
        out.u64(UInt64(names?.count ?? 0))
        out.u64(checksum)
        return out.bytes
    }

    init(decoding bytes: [UInt8]) throws(JournalError) {
        var input = Reader(bytes: bytes)
        guard Array(try input.take(Self.magic.count)) == Self.magic else { throw JournalError("not an undo journal") }
        let version = try input.u32()
        guard version == Self.version else { throw JournalError("journal version \(version); this program reads \(Self.version)") }
        let flags = try input.u32()
        var plans: [DirectoryPlan] = []
        var names: [FilePath] = []
        var entryCount: UInt64 = 0
        while true {
            let tagOffset = input.offset
            guard let tag = Tag(rawValue: try input.u8()) else { throw JournalError("unknown record at byte \(tagOffset)") }
            switch tag {
            case .directory:
                plans.append(DirectoryPlan(path: try input.path()))
            case .entry:
                guard !plans.isEmpty else { throw JournalError("an entry outside any directory at byte \(tagOffset)") }
                var entry = EntryChange(name: try input.path())
                let fields = try input.u8()
                if fields & 1 != 0 { entry.owner = Ownership(uid: try input.u32(), gid: try input.u32()) }
                if fields & 2 != 0 { entry.mode = FilePermissions(rawValue: CModeT(try input.u32())) }
                let count = try input.u32()
                for _ in 0..<count {
                    let name = String(decoding: try input.data(), as: UTF8.self)
                    entry.attributes.append(AttributeValue(name: name, value: try input.data()))
                }
                plans[plans.count - 1].entries.append(entry)
                entryCount += 1
            case .name:
                names.append(try input.path())
            case .end:
                let checksum = Self.fnv1a(bytes[..<tagOffset])
                guard try input.u64() == UInt64(plans.count), try input.u64() == entryCount,
                      try input.u64() == UInt64(names.count), try input.u64() == checksum
                else { throw JournalError("its counts or checksum do not match its records") }
                guard input.offset == bytes.count else { throw JournalError("bytes after the end record") }
                undo = plans
                self.names = flags & 1 != 0 ? names : nil
                return
            }
        }
    }

    /// Why a journal could not be read.
    struct JournalError: Error {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }

    static func fnv1a<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }

    private struct Writer {
        var bytes: [UInt8] = []
        mutating func u8(_ value: UInt8) { bytes.append(value) }
        mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        mutating func data(_ value: [UInt8]) {
            u32(UInt32(value.count))
            bytes.append(contentsOf: value)
        }
        /// A path's bytes exactly as the filesystem takes them.
        mutating func path(_ path: FilePath) {
            path.withPlatformString { start in
                let count = strlen(start)
                u32(UInt32(count))
                start.withMemoryRebound(to: UInt8.self, capacity: count) { bytes.append(contentsOf: UnsafeBufferPointer(start: $0, count: count)) }
            }
        }
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func take(_ count: Int) throws(JournalError) -> ArraySlice<UInt8> {
            guard count >= 0, bytes.count - offset >= count else { throw JournalError("cut short at byte \(offset)") }
            defer { offset += count }
            return bytes[offset..<offset + count]
        }
        mutating func u8() throws(JournalError) -> UInt8 { try take(1).first! }
        mutating func u32() throws(JournalError) -> UInt32 {
            try take(4).reversed().reduce(0) { $0 << 8 | UInt32($1) }
        }
        mutating func u64() throws(JournalError) -> UInt64 {
            try take(8).reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }
        mutating func data() throws(JournalError) -> [UInt8] { Array(try take(Int(try u32()))) }
        mutating func path() throws(JournalError) -> FilePath {
            let raw = try data()
            guard !raw.contains(0) else { throw JournalError("a path holding a NUL byte at byte \(offset)") }
            return (raw + [0]).withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { FilePath(platformString: $0.baseAddress!) }
            }
        }
    }

    // MARK: - Files

    /// Writes the journal to `<path>.new`, flushes it, renames it to `path` and flushes the
    /// directory, so that the journal is on disk, whole, before anything it undoes is changed.
    func write(to path: FilePath) throws(StorageError) {
        let cwd = FileDescriptor.currentWorkingDirectory
        let temporary = FilePath(path.string + ".new")
        let bytes = encoded()
        do throws(Errno) {
            let fd = try cwd.open(at: temporary, flags: O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, permissions: 0o600)
            do throws(Errno) {
                let written: Result<Void, Errno> = bytes.withUnsafeBytes { buffer in
                    Result { () throws(Errno) in try fd.writeFully(buffer) }
                }
                try written.get()
                try fd.synchronize()
            } catch {
                fd.closeQuietly()
                throw error
            }
            fd.closeQuietly()
            try cwd.rename(temporary, to: path)
            // A bare name's directory is the working directory: "" cannot be opened.
            let parent = path.removingLastComponent()
            let directory = try FileDescriptor.openDirectory(parent.isEmpty ? "." : parent)
            defer { directory.closeQuietly() }
            try directory.synchronize()
        } catch {
            try? cwd.remove(at: temporary)
            throw StorageError("write undo journal", path: path.string, errno: error)
        }
    }

    /// Reads and checks the journal at `path`.
    init(reading path: FilePath) throws(StorageError) {
        let bytes: [UInt8] = try attempt("read undo journal", path) { () throws(Errno) in
            let fd = try FileDescriptor.currentWorkingDirectory.open(at: path, flags: O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            defer { fd.closeQuietly() }
            return try fd.readToEnd()
        }
        do throws(JournalError) {
            try self.init(decoding: bytes)
        } catch {
            throw StorageError(.corrupt, "read undo journal", path: path.string, reason: error.reason)
        }
    }

    // MARK: - Names

    /// Every name below `directory` (its root excluded), as paths relative to it, directories
    /// before what they hold. Stays on the directory's filesystem and follows no symlink.
    static func names(below directory: FilePath) throws(StorageError) -> [FilePath] {
        let root: FileDescriptor = try attempt("record names for undo", directory) { () throws(Errno) in
            try FileDescriptor.currentWorkingDirectory.openDirectory(at: directory)
        }
        defer { root.closeQuietly() }
        var names: [FilePath] = []
        var pending = [FilePath()]
        while let path = pending.popLast() {
            do throws(Errno) {
                let fd = try root.openDirectory(beneath: path)
                defer { fd.closeQuietly() }
                for entry in try fd.rawDirectoryEntries() {
                    let child = path.pushing(entry.name)
                    names.append(child)
                    if try isDirectory(entry, in: fd) { pending.append(child) }
                }
            } catch .improperLink {
                continue  // a mount point inside: not the tree's
            } catch {
                throw StorageError("record names for undo", path: directory.pushing(path).string, errno: error)
            }
        }
        return names
    }

    /// Removes every name below `root` whose path is not in `kept` (with all it holds), and
    /// looks inside the kept directories for more. Stays on the tree's filesystem.
    static func removeNames(notIn kept: Set<FilePath>, below root: FileDescriptor, tree: FilePath) throws(StorageError) {
        var pending = [FilePath()]
        while let path = pending.popLast() {
            do throws(Errno) {
                let fd: FileDescriptor
                do throws(Errno) {
                    fd = try root.openDirectory(beneath: path)
                } catch .noSuchFileOrDirectory {
                    continue
                }
                defer { fd.closeQuietly() }
                for entry in try fd.rawDirectoryEntries() {
                    let child = path.pushing(entry.name)
                    if !kept.contains(child) {
                        try fd.removeTree(at: entry.name, kind: entry.kind)
                    } else if try isDirectory(entry, in: fd) {
                        pending.append(child)
                    }
                }
            } catch .improperLink {
                continue
            } catch {
                throw StorageError("roll back shift: remove what the shift added", path: tree.pushing(path).string, errno: error)
            }
        }
    }

    private static func isDirectory(_ entry: RawDirectoryEntry, in directory: FileDescriptor) throws(Errno) -> Bool {
        if entry.kind != .unknown { return entry.kind == .directory }
        return try directory.status(at: entry.name).kind == .directory
    }
}
