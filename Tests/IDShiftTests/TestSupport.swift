import Foundation
import GraphDriver
import StrataSystem
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A scratch directory for one test, removed when the test is done with it.
final class ScratchDirectory {
    let path: String

    init(_ label: String = "idshift-test") {
        var template = Array("/tmp/\(label)-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    deinit {
        // A test that failed half-way may have left a mount inside: never delete through it.
        for entry in Mounts.mountTable().reversed() where entry.mountPoint.hasPrefix(path + "/") {
            try? Mounts.unmount(FilePath(entry.mountPoint), flags: .detach)
        }
        _ = try? shell("rm -rf --one-file-system '\(path)'")
    }

    /// Makes a subdirectory (and its parents) and returns its path.
    func directory(_ name: String) -> String {
        let p = path + "/" + name
        try? FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }
}

struct ShellFailed: Error, CustomStringConvertible {
    var description: String
}

/// Runs a `/bin/sh -c` script and returns its standard output; throws when it exits non-zero.
@discardableResult
func shell(_ script: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", script]
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let output = out.fileHandleForReading.readDataToEndOfFile()
    let errors = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw ShellFailed(description: "sh -c '\(script.prefix(300))' exited \(process.terminationStatus): "
                          + String(decoding: errors, as: UTF8.self))
    }
    return String(decoding: output, as: UTF8.self)
}

/// Owner and mode of a path itself (never a symlink's target).
struct Owner: Equatable, CustomStringConvertible {
    var uid: UInt32
    var gid: UInt32
    var mode: UInt32

    var description: String { "\(uid):\(gid) \(String(mode, radix: 8))" }
}

func owner(_ path: String) throws -> Owner {
    var st = stat()
    guard lstat(path, &st) == 0 else { throw ShellFailed(description: "lstat \(path): errno \(errno)") }
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
    try shell("""
        cd '\(root)' && find . -printf '%p %U:%G %m\\n' | sort
        getfattr -R -P -d -m - -e hex . 2>/dev/null
        """)
}

func mapping(_ text: String) -> IDMappings {
    let ranges = try! IDMap.parseList(text)
    return IDMappings(uidMap: ranges, gidMap: ranges)
}

/// Tests that change owners, capabilities and mounts need root.
let needsRoot = Testing.ConditionTrait.enabled(if: geteuid() == 0, "needs root (chown, setcap, mount)")
