import Foundation
import GraphDriver
import LayerArchive
import StrataSystem
import SystemPackage

/// A scratch directory for one test, removed when the test is done with it.
final class Scratch {
    let path: String

    init(_ label: String = "strata-test") {
        let template = "/tmp/\(label)-XXXXXX"
        var bytes = Array(template.utf8CString)
        path = bytes.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    deinit { cleanup() }

    func cleanup() {
        _ = try? run("/bin/rm", ["-rf", path])
    }

    /// Makes a subdirectory and returns its path.
    func directory(_ name: String) -> String {
        let p = path + "/" + name
        try? FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    /// Writes `bytes` to a file in the scratch directory and returns its path.
    func file(_ name: String, _ bytes: [UInt8]) -> String {
        let p = path + "/" + name
        FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }
}

struct CommandFailed: Error, CustomStringConvertible {
    var description: String
}

/// Runs a program and returns its standard output; throws when it exits non-zero.
@discardableResult
func run(_ executable: String, _ arguments: [String], input: [UInt8]? = nil) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let inPipe = Pipe()
    if input != nil { process.standardInput = inPipe }
    try process.run()
    if let input {
        inPipe.fileHandleForWriting.write(Data(input))
        try inPipe.fileHandleForWriting.close()
    }
    let output = out.fileHandleForReading.readDataToEndOfFile()
    let errors = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw CommandFailed(description: "\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(String(decoding: errors, as: UTF8.self))")
    }
    return String(decoding: output, as: UTF8.self)
}

/// Runs a shell command line (for fixtures made with tar, setfacl, setcap, mknod).
@discardableResult
func sh(_ command: String) throws -> String {
    try run("/bin/sh", ["-c", command])
}

/// Applies the archive bytes to `layer`.
@discardableResult
func apply(_ archive: [UInt8], to layer: String, options: ApplyOptions = ApplyOptions()) throws(StorageError) -> ApplyResult {
    let scratch = Scratch("strata-archive")
    let file = scratch.file("layer.tar", archive)
    return try LayerApplier.apply(archive: FilePath(file), into: FilePath(layer), options: options)
}

/// Everything a test compares about one file.
struct FileRecord: Hashable, CustomStringConvertible {
    var kind: FileKind
    var mode: UInt32
    var uid: UInt32
    var gid: UInt32
    var size: Int64
    var mtime: FileTime?
    var content: [UInt8]?
    var linkTarget: String?
    var device: UInt64
    var xattrs: [String: [UInt8]]

    var description: String {
        "\(kind) mode=\(String(mode, radix: 8)) owner=\(uid):\(gid) size=\(size) dev=\(device) link=\(linkTarget ?? "-") xattrs=\(xattrs.keys.sorted())"
    }
}

/// A map of every path below `root` (relative, `.` for the root itself) to its record.
/// Directory times are left out unless `directoryTimes` is set; file times are kept.
func snapshot(_ root: String, directoryTimes: Bool = false, inodes: UnsafeMutablePointer<[String: UInt64]>? = nil) throws -> [String: FileRecord] {
    var result: [String: FileRecord] = [:]
    let rootFD = try FileDescriptor.openDirectory(FilePath(root))
    defer { rootFD.closeQuietly() }
    func record(_ dir: FileDescriptor, _ name: String, _ relative: String) throws {
        let p: FilePath = FilePath(name)
        let st = try dir.status(at: p)
        var xattrs: [String: [UInt8]] = [:]
        for x in try dir.extendedAttributeNames(at: p) { xattrs[x] = try dir.extendedAttribute(x, at: p) }
        var content: [UInt8]? = nil
        var link: String? = nil
        if st.kind == .regular {
            let fd = try dir.open(at: p, .readOnly)
            content = try fd.readToEnd()
            fd.closeQuietly()
        } else if st.kind == .symlink {
            link = try dir.readSymbolicLink(at: p)
        }
        result[relative] = FileRecord(
            kind: st.kind, mode: UInt32(st.mode & 0o7777), uid: st.userID.rawValue, gid: st.groupID.rawValue,
            size: st.kind == .regular ? st.size : 0,
            mtime: (st.kind == .directory && !directoryTimes) ? nil : st.modificationTime,
            content: content, linkTarget: link, device: st.specialDevice, xattrs: xattrs)
        inodes?.pointee[relative] = st.inode
        if st.kind == .directory {
            let child = try dir.openDirectory(at: p)
            defer { child.closeQuietly() }
            for entry in try child.directoryEntries() {
                try record(child, entry.name, relative == "." ? entry.name : relative + "/" + entry.name)
            }
        }
    }
    try record(rootFD, ".", ".")
    return result
}
