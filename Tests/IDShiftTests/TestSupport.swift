import Foundation
import GraphDriver
import StrataSystem
import SystemPackage
// Every file of this target uses the shared helpers (needsRoot, sh, scratch directories).
@_exported import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Owner and mode of a path itself (never a symlink's target).
struct Owner: Equatable, CustomStringConvertible {
    var uid: UInt32
    var gid: UInt32
    var mode: UInt32

    var description: String { "\(uid):\(gid) \(String(mode, radix: 8))" }
}

func owner(_ path: String) throws -> Owner {
    var st = stat()
    guard lstat(path, &st) == 0 else { throw Errno(rawValue: errno) }
    return Owner(uid: st.st_uid, gid: st.st_gid, mode: st.st_mode & 0o7777)
}

/// An extended attribute of a path itself; `nil` when absent.
func xattr(_ path: String, _ name: String) -> [UInt8]? {
    let file = FilePath(path)
    guard let parent = try? FileDescriptor.openDirectory(file.removingLastComponent()) else { return nil }
    defer { parent.closeQuietly() }
    return (try? parent.extendedAttributeNoFollow(name, at: FilePath(file.lastComponent!.string))) ?? nil
}

/// The named user and group entries of an ACL attribute, sorted: `u:1234:6`, `g:5678:4`.
func namedACLEntries(_ path: String, _ name: String = "system.posix_acl_access") -> [String] {
    guard let bytes = xattr(path, name), let acl = PosixACL(decoding: bytes) else { return [] }
    return acl.entries.filter { $0.tag == .user || $0.tag == .group }
        .map { "\($0.tag == .user ? "u" : "g"):\($0.id):\($0.permissions)" }
}

/// Everything a shift may change, for every name under `root`: owner, mode and every extended
/// attribute (in hex). Used to prove a failed shift changed nothing.
func snapshot(_ root: String) throws -> String {
    try sh("""
        cd '\(root)' && find . -printf '%p %U:%G %m\\n' | sort
        getfattr -R -P -d -m - -e hex . 2>/dev/null
        """)
}

func mapping(_ text: String) -> IDMappings {
    let ranges = try! IDMap.parseList(text)
    return IDMappings(uidMap: ranges, gidMap: ranges)
}

