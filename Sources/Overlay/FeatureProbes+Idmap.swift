import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension FeatureProbes {
    /// Whether overlayfs takes idmapped lower layers on this backing filesystem: an idmapped
    /// clone of a lower directory (mapping 0 to 100000) is stacked, and a root-owned file must
    /// show as owned by 100000 through the overlay.
    ///
    /// The mapping comes from a user namespace made for it (`UserNamespace`); where one cannot
    /// be made, the probe answers false.
    static func probeIdmappedLowers(_ scratch: FilePath) -> Bool {
        let cwd = FileDescriptor.currentWorkingDirectory
        let root = scratch.appending("idmap")
        for sub in ["", "lower", "upper", "work", "merged"] {
            guard (try? cwd.makeDirectory(at: sub.isEmpty ? root : root.appending(sub))) != nil else { return false }
        }
        guard let f = try? cwd.open(at: root.appending("lower/f"), flags: O_WRONLY | O_CREAT, permissions: 0o644)
        else { return false }
        f.closeQuietly()
        do throws(Errno) {
            let range = UserNamespace.Range(inside: 0, outside: 100_000, count: 65536)
            let namespace = try UserNamespace(uidMap: [range], gidMap: [range])
            let tree = try FileDescriptor.cloneMount(root.appending("lower"))
            defer { tree.closeQuietly() }
            try tree.setIDMapping(userNamespace: namespace.descriptor)
            let context = try FileSystemContext(type: "overlay")
            try context.set("lowerdir+", "/proc/self/fd/\(tree.rawValue)")
            try context.set("upperdir", root.appending("upper").string)
            try context.set("workdir", root.appending("work").string)
            try context.create()
            let mount = try context.mount(attributes: [])
            defer { mount.closeQuietly() }
            try mount.moveMount(to: root.appending("merged"))
            defer { try? Mounts.unmount(root.appending("merged"), flags: .detach) }
            return try cwd.status(at: root.appending("merged/f")).userID.rawValue == 100_000
        } catch {
            return false
        }
    }
}
