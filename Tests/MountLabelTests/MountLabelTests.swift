import Foundation
import GraphDriver
@testable import MountLabel
import StrataSystem
import SystemPackage
import TestTiers
import Testing

enum SELinuxHost {
    /// SELinux is on and a policy is loaded: true in the kernel test tier's guest, false here.
    static let enabled = MountLabel.SELinux.isEnabled

    /// A context that the kernel tier's policy defines (as container hosts' policies do).
    static let label = try! SELinuxContext("system_u:object_r:container_file_t:s0")
}

@Suite("Mount labels (any host)")
struct MountLabelHostTests {
    @Test("a disabled labeler adds no context option and relabels nothing")
    func disabledLabeler() throws {
        let labeler = SELinuxLabeler(enabled: false)
        #expect(!labeler.isEnabled)
        #expect(try labeler.mountOption(for: try SELinuxContext("system_u:object_r:container_file_t:s0:c1,c2")) == nil)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("strata-label-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try labeler.relabel(FilePath(dir), label: try SELinuxContext("system_u:object_r:container_file_t:s0"), shared: false)
        #expect(try MountLabel.SELinux.label(of: FilePath(dir)) == nil || SELinuxHost.enabled)
    }

    @Test("the labeler reports SELinux as the kernel has it")
    func reportsHost() throws {
        // TestTiers probes the kernel directly (selinuxfs mounted and a policy loaded).
        #expect(SELinuxLabeler().isEnabled == TestTiers.SELinux.availability.isAvailable)
    }

    @Test("malformed contexts are refused before any mount", arguments: ["", "onlyone", "a:b", "u:r:t:s0\" ,upperdir=/x", "u:r:t s0"])
    func malformedContexts(_ text: String) {
        #expect(throws: StorageError.self) { try SELinuxContext(text) }
    }

    @Test("the shared variant drops the categories")
    func sharedVariant() throws {
        #expect(try SELinuxContext("system_u:object_r:container_file_t:s0:c1,c2").sharedVariant.rawValue
                == "system_u:object_r:container_file_t:s0")
        #expect(try SELinuxContext("u:r:t").sharedVariant.rawValue == "u:r:t")
    }
}

/// The relabeling walk, on a host where SELinux is off: the kernel stores `security.selinux` as
/// a plain attribute then, so the walk can be checked, but not the policy check `relabel` makes
/// first (that runs in the kernel tier), hence the internal `labelTree`.
@Suite("Relabeling walk (root)", .enabled(if: getuid() == 0, "writing security.* attributes needs CAP_SYS_ADMIN"))
struct RelabelWalkTests {
    /// A one-component path from raw bytes (not necessarily UTF-8).
    func rawName(_ bytes: [UInt8]) -> FilePath {
        FilePath(platformString: bytes.map { CChar(bitPattern: $0) } + [0])
    }

    func label(_ directory: FileDescriptor, _ name: FilePath) throws -> String? {
        try directory.extendedAttributeNoFollow("security.selinux", at: name).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test("every file is labeled, a name that is not UTF-8 included, and no symlink is followed")
    func walk() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("strata-relabel-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: base + "/tree/sub", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: base + "/outside", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let sub = try FileDescriptor.openDirectory(FilePath(base + "/tree/sub"))
        defer { sub.closeQuietly() }
        // "f\xFF" decodes lossily to "f\u{FFFD}", which is another file here: a walk by String
        // would label that one twice and never reach the first.
        let invalid = rawName([0x66, 0xFF])
        let replacement = FilePath("f\u{FFFD}")
        for name in [invalid, replacement] {
            let fd = try sub.open(at: name, .writeOnly, options: [.create, .exclusiveCreate], permissions: .init(rawValue: 0o644))
            fd.closeQuietly()
        }
        let invalidDirectory = rawName([0x64, 0xFE])
        try sub.makeDirectory(at: invalidDirectory)
        let inner = try sub.openDirectory(at: invalidDirectory)
        defer { inner.closeQuietly() }
        try inner.open(at: "deep", .writeOnly, options: [.create], permissions: .init(rawValue: 0o644)).closeQuietly()
        try FileManager.default.createSymbolicLink(atPath: base + "/tree/link", withDestinationPath: base + "/outside")

        let context = try SELinuxContext("system_u:object_r:container_file_t:s0")
        let cwd = FileDescriptor.currentWorkingDirectory
        // With SELinux on, the policy gave `outside` a label when it was made; it must not change.
        let outsideBefore = try label(cwd, FilePath(base + "/outside"))
        #expect(outsideBefore != context.rawValue + "\0")
        try SELinuxLabeler.labelTree(FilePath(base + "/tree"), with: context)

        let expected = context.rawValue + "\0"
        #expect(try label(cwd, FilePath(base + "/tree")) == expected)
        #expect(try label(cwd, FilePath(base + "/tree/sub")) == expected)
        #expect(try label(sub, invalid) == expected)
        #expect(try label(sub, replacement) == expected)
        #expect(try label(sub, invalidDirectory) == expected)
        #expect(try label(inner, "deep") == expected)
        // The symlink itself is labeled; what it points to is not.
        #expect(try label(cwd, FilePath(base + "/tree/link")) == expected)
        #expect(try label(cwd, FilePath(base + "/outside")) == outsideBefore)
    }
}

@Suite("Mount labels (kernel tier)", .serialized, .kernelTier(.selinux))
struct MountLabelKernelTests {
    @Test("files relabeled in a tree show the new label")
    func relabelTree() throws {
        let dir = try scratchOnTmpfs()
        defer { unmountScratch(dir) }
        try FileManager.default.createDirectory(atPath: dir + "/a/b", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir + "/a/b/file", contents: Data("x".utf8))
        try SELinuxLabeler().relabel(FilePath(dir + "/a"), label: SELinuxHost.label, shared: false)
        for path in ["/a", "/a/b", "/a/b/file"] {
            #expect(try MountLabel.SELinux.label(of: FilePath(dir + path)) == SELinuxHost.label)
        }
    }

    @Test("an overlay mounted with the label's option shows the label on its files")
    func labeledOverlay() throws {
        let dir = try scratchOnTmpfs()
        defer { unmountScratch(dir) }
        for sub in ["lower", "upper", "work", "merged"] {
            try FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true)
        }
        FileManager.default.createFile(atPath: dir + "/lower/file", contents: Data("x".utf8))
        let option = try #require(try SELinuxLabeler().mountOption(for: SELinuxHost.label))
        #expect(option.description == "context=\"\(SELinuxHost.label.rawValue)\"")
        let data = "lowerdir=\(dir)/lower,upperdir=\(dir)/upper,workdir=\(dir)/work,\(option)"
        try Mounts.mount(source: "overlay", target: FilePath(dir + "/merged"), type: "overlay", data: data)
        defer { try? Mounts.unmount(FilePath(dir + "/merged")) }
        let fd = try FileDescriptor.openDirectory(FilePath(dir + "/merged"))
        defer { fd.closeQuietly() }
        let raw = try #require(try fd.extendedAttribute("security.selinux", at: "file"))
        let text = String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        #expect(text == SELinuxHost.label.rawValue)
    }

    @Test("a context the policy does not know is refused")
    func invalidContext() throws {
        let bogus = try SELinuxContext("system_u:object_r:no_such_type_strata_t:s0")
        #expect(throws: StorageError.self) { try SELinuxLabeler().mountOption(for: bogus) }
    }

    /// A tmpfs (which supports labels) for one test.
    private func scratchOnTmpfs() throws -> String {
        let dir = "/tmp/strata-selinux-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Mounts.mount(source: "tmpfs", target: FilePath(dir), type: "tmpfs")
        return dir
    }

    private func unmountScratch(_ dir: String) {
        try? Mounts.unmount(FilePath(dir), flags: .detach)
        try? FileManager.default.removeItem(atPath: dir)
    }
}
