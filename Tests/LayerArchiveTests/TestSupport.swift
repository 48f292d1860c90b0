import Foundation
import GraphDriver
import LayerArchive
import StrataSystem
import SystemPackage
// Every file of this target uses the shared helpers (sh, scratch directories, runningAsRoot).
@_exported import TestSupport

/// Applies the archive bytes to `layer`.
@discardableResult
func apply(_ archive: [UInt8], to layer: String, options: ApplyOptions = ApplyOptions()) throws(StorageError) -> ApplyResult {
    let scratch = ScratchDirectory("strata-archive")
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
