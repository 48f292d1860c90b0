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
        guard let root = makeStack(scratch, "idmap") else { return false }
        let lower = root.appending(StoreLayout.ProbeStack.lower1), merged = root.appending(StoreLayout.ProbeStack.merged)
        guard let f = try? cwd.open(at: lower.appending("f"), flags: O_WRONLY | O_CREAT, permissions: 0o644)
        else { return false }
        f.closeQuietly()
        do throws(Errno) {
            let range = UserNamespace.Range(inside: 0, outside: 100_000, count: 65536)
            let namespace = try UserNamespace(uidMap: [range], gidMap: [range])
            let tree = try FileDescriptor.cloneMount(lower)
            defer { tree.closeQuietly() }
            try tree.setIDMapping(userNamespace: namespace.descriptor)
            let context = try FileSystemContext(type: "overlay")
            try context.set("lowerdir+", "/proc/self/fd/\(tree.rawValue)")
            try context.set("upperdir", root.appending(StoreLayout.ProbeStack.upper).string)
            try context.set("workdir", root.appending(StoreLayout.ProbeStack.work).string)
            try context.create()
            let mount = try context.mount(attributes: [])
            defer { mount.closeQuietly() }
            try mount.moveMount(to: merged)
            defer { try? Mounts.unmount(merged, flags: .detach) }
            return try cwd.status(at: merged.appending("f")).userID.rawValue == 100_000
        } catch {
            return false
        }
    }
}
