import CArchive
import Foundation
import GraphDriver
import LayerArchive
import StrataSystem
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A failed step of making or reading a fixture archive.
struct ShellFailure: Error, CustomStringConvertible {
    var command: String
    var status: Int32
    var stderr: String
    var description: String { "`\(command)` exited \(status): \(stderr)" }
}

/// Writes `text` to a file, creating it.
func writeFile(_ path: String, _ text: String, mode: mode_t = 0o644) throws {
    let fd = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .truncate], permissions: FilePermissions(rawValue: mode))
    defer { try? fd.close() }
    _ = try fd.writeAll(Array(text.utf8))
    try fd.changeMode(permissions: FilePermissions(rawValue: mode))
}

/// Sets a file's mtime (of a symlink itself) to `seconds.nanoseconds`.
func setModificationTime(_ path: String, seconds: Int64, nanoseconds: Int64) throws {
    try FileDescriptor.currentWorkingDirectory.setTimes(
        at: FilePath(path), access: FileTime(seconds: seconds, nanoseconds: nanoseconds),
        modification: FileTime(seconds: seconds, nanoseconds: nanoseconds))
}

/// Sets an xattr on `path` (of a symlink itself).
func setAttribute(_ path: String, _ name: String, _ value: [UInt8]) throws {
    // Anchored on the parent directory: the path-based xattr calls go through /proc/self/fd/<dir>.
    let file = FilePath(path)
    let parent = try FileDescriptor.openDirectory(file.removingLastComponent())
    defer { try? parent.close() }
    try parent.setExtendedAttribute(name, value, at: FilePath(file.lastComponent!.string))
}

/// Makes an overlay whiteout (character device 0/0).
func makeWhiteout(_ path: String) throws {
    try FileDescriptor.currentWorkingDirectory.makeNode(at: FilePath(path), kind: .characterDevice, permissions: FilePermissions(rawValue: 0))
}

/// One entry of a tar stream as libarchive reads it.
struct TarRecord: Equatable, CustomStringConvertible {
    var path: String
    var type: mode_t
    var permissions: mode_t
    var uid: Int64
    var gid: Int64
    var size: Int64
    var mtime: Int64
    var mtimeNanoseconds: Int
    var symlink: String?
    var hardlink: String?
    var deviceMajor: UInt32 = 0
    var deviceMinor: UInt32 = 0
    var xattrs: [String: [UInt8]] = [:]
    var content: [UInt8] = []

    var description: String {
        "\(path) type=\(String(type, radix: 8)) perm=\(String(permissions, radix: 8)) \(uid):\(gid) size=\(size)"
    }
}

/// The compression libarchive detected while reading.
enum DetectedFilter: Equatable { case none, gzip, zstd, other }

/// Reads a tar stream (any compression) with libarchive.
func readTar(_ bytes: [UInt8]) throws -> (records: [TarRecord], filter: DetectedFilter) {
    guard let archive = archive_read_new() else { throw ShellFailure(command: "archive_read_new", status: -1, stderr: "") }
    defer { archive_read_free(archive) }
    archive_read_support_format_all(archive)
    archive_read_support_filter_all(archive)
    var records: [TarRecord] = []
    var filter = DetectedFilter.none
    try bytes.withUnsafeBytes { buffer in
        guard archive_read_open_memory(archive, buffer.baseAddress, buffer.count) == ARCHIVE_OK else {
            throw ShellFailure(command: "archive_read_open_memory", status: -1, stderr: String(cString: archive_error_string(archive)))
        }
        var entry: OpaquePointer?
        while true {
            let status = archive_read_next_header(archive, &entry)
            if status == ARCHIVE_EOF { break }
            guard status >= ARCHIVE_WARN, let entry else {
                throw ShellFailure(command: "archive_read_next_header", status: status, stderr: String(cString: archive_error_string(archive)))
            }
            var record = TarRecord(
                path: String(cString: archive_entry_pathname(entry)),
                type: archive_entry_filetype(entry), permissions: archive_entry_perm(entry),
                uid: archive_entry_uid(entry), gid: archive_entry_gid(entry), size: archive_entry_size(entry),
                mtime: Int64(archive_entry_mtime(entry)), mtimeNanoseconds: archive_entry_mtime_nsec(entry),
                symlink: archive_entry_symlink(entry).map { String(cString: $0) },
                hardlink: archive_entry_hardlink(entry).map { String(cString: $0) })
            if record.type == S_IFCHR || record.type == S_IFBLK {
                record.deviceMajor = UInt32(archive_entry_rdevmajor(entry))
                record.deviceMinor = UInt32(archive_entry_rdevminor(entry))
            }
            archive_entry_xattr_reset(entry)
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var length = 0
            while archive_entry_xattr_next(entry, &name, &value, &length) == ARCHIVE_OK {
                record.xattrs[String(cString: name!)] = Array(UnsafeRawBufferPointer(start: value, count: length))
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = chunk.withUnsafeMutableBytes { archive_read_data(archive, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                record.content.append(contentsOf: chunk[0..<n])
            }
            records.append(record)
        }
        switch archive_filter_code(archive, 0) {
        case ARCHIVE_FILTER_NONE: filter = .none
        case ARCHIVE_FILTER_GZIP: filter = .gzip
        case ARCHIVE_FILTER_ZSTD: filter = .zstd
        default: filter = .other
        }
    }
    return (records, filter)
}

/// Exports `layer` into memory.
func exportLayer(_ layer: String, lowers: [String] = [], options: ExportOptions = ExportOptions()) throws -> (bytes: [UInt8], written: Int64) {
    try captureOutput { fd in
        try LayerExporter.export(layer: FilePath(layer), lowers: lowers.map { FilePath($0) }, to: fd, options: options)
    }
}

/// Runs `body` with a descriptor on a temporary file and returns what it wrote.
func captureOutput(_ body: (FileDescriptor) throws -> Int64) throws -> (bytes: [UInt8], written: Int64) {
    var template = Array("/tmp/strata-export-out-XXXXXX".utf8CString)
    let raw = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard raw >= 0 else { throw Errno(rawValue: errno) }
    template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
    let fd = FileDescriptor(rawValue: raw)
    defer { try? fd.close() }
    let written = try body(fd)
    try fd.seek(offset: 0, from: .start)
    return (try fd.readToEnd(), written)
}

/// Writes bytes to a new file.
func saveBytes(_ bytes: [UInt8], to path: String) throws {
    let fd = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite)
    defer { try? fd.close() }
    _ = try fd.writeAll(bytes)
}

/// The path → record table of a stream.
func recordsByPath(_ records: [TarRecord]) -> [String: TarRecord] {
    Dictionary(records.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
}

/// What a test compares of one file in two trees.
struct FileSnapshot: Equatable, CustomStringConvertible {
    var kind: FileKind
    var mode: mode_t
    var uid: UInt32
    var gid: UInt32
    var size: Int64
    var mtime: FileTime
    var device: UInt64
    var symlink: String?
    var content: [UInt8]?
    var xattrs: [String: [UInt8]]

    var description: String { "\(kind) \(String(mode, radix: 8)) \(uid):\(gid) \(size) \(mtime) xattrs=\(xattrs.keys.sorted())" }
}

/// Every path below `root` (relative, no leading slash) with its snapshot, and the groups of
/// paths that share an inode.
func snapshotTree(_ root: String, attributes: Set<String>) throws -> (files: [String: FileSnapshot], links: Set<Set<String>>) {
    var files: [String: FileSnapshot] = [:]
    var inodes: [UInt64: Set<String>] = [:]
    let rootFD = try FileDescriptor.openDirectory(FilePath(root))
    defer { try? rootFD.close() }
    func walk(_ directory: FileDescriptor, _ prefix: String) throws {
        for entry in try directory.directoryEntries().sorted(by: { $0.name < $1.name }) {
            let path = prefix.isEmpty ? entry.name : prefix + "/" + entry.name
            let status = try directory.status(at: FilePath(entry.name))
            var xattrs: [String: [UInt8]] = [:]
            for name in try directory.extendedAttributeNames(at: FilePath(entry.name)) where attributes.contains(name) {
                xattrs[name] = try directory.extendedAttribute(name, at: FilePath(entry.name))
            }
            var snapshot = FileSnapshot(
                kind: status.kind, mode: status.mode & 0o7777, uid: status.userID.rawValue, gid: status.groupID.rawValue,
                size: status.kind == .directory ? 0 : status.size, mtime: status.modificationTime,
                device: status.specialDevice, xattrs: xattrs)
            switch status.kind {
            case .symlink: snapshot.symlink = try directory.readSymbolicLink(at: FilePath(entry.name))
            case .regular:
                let fd = try directory.open(at: FilePath(entry.name), .readOnly)
                snapshot.content = try fd.readToEnd()
                try fd.close()
                if status.linkCount > 1 { inodes[status.inode, default: []].insert(path) }
            default: break
            }
            files[path] = snapshot
            if status.kind == .directory {
                let child = try directory.openDirectory(at: FilePath(entry.name))
                defer { try? child.close() }
                try walk(child, path)
            }
        }
    }
    try walk(rootFD, "")
    return (files, Set(inodes.values))
}
