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
    /// The user namespace comes from a short-lived `unshare --user sleep` whose maps this
    /// process writes; without `unshare` the probe answers false.
    static func probeIdmappedLowers(_ scratch: FilePath) -> Bool {
        let cwd = FileDescriptor.currentWorkingDirectory
        let root = scratch.appending("idmap")
        for sub in ["", "lower", "upper", "work", "merged"] {
            guard (try? cwd.makeDirectory(at: sub.isEmpty ? root : root.appending(sub))) != nil else { return false }
        }
        guard let f = try? cwd.open(at: root.appending("lower/f"), flags: O_WRONLY | O_CREAT, permissions: 0o644)
        else { return false }
        f.closeQuietly()
        guard let pid = spawnUserNamespaceHolder() else { return false }
        defer {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        for map in ["uid_map", "gid_map"] {
            guard (try? cwd.writeMap("0 100000 65536\n", at: FilePath("/proc/\(pid)/\(map)"))) != nil else { return false }
        }
        do throws(Errno) {
            let namespace = try cwd.open(at: FilePath("/proc/\(pid)/ns/user"), flags: O_RDONLY)
            defer { namespace.closeQuietly() }
            let tree = try FileDescriptor.cloneMount(root.appending("lower"))
            defer { tree.closeQuietly() }
            try tree.setIDMapping(userNamespace: namespace)
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

    /// Starts `unshare --user sleep 10` (a process sitting in a fresh user namespace); its pid.
    private static func spawnUserNamespaceHolder() -> pid_t? {
        let path = "/usr/bin/unshare"
        guard access(path, X_OK) == 0 else { return nil }
        let arguments = [path, "--user", "sleep", "10"]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var environment: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/bin:/bin"), nil]
        defer { environment.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, path, nil, nil, &argv, &environment) == 0 else { return nil }
        // Wait until the child has entered its namespace (its user namespace differs from ours).
        let ours = (try? FileDescriptor.currentWorkingDirectory.readSymbolicLink(at: "/proc/self/ns/user")) ?? ""
        for _ in 0..<200 {
            if let theirs = try? FileDescriptor.currentWorkingDirectory.readSymbolicLink(at: FilePath("/proc/\(pid)/ns/user")),
               theirs != ours,
               let command = try? FileDescriptor.currentWorkingDirectory.readText(at: FilePath("/proc/\(pid)/comm")),
               command.hasPrefix("sleep") {
                return pid
            }
            usleep(2000)
        }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return nil
    }
}

extension FileDescriptor {
    /// Writes an ID map to `/proc/<pid>/{uid,gid}_map` in one `write` (the kernel takes one).
    fileprivate func writeMap(_ text: String, at path: FilePath) throws(Errno) {
        let fd = try open(at: path, flags: O_WRONLY)
        defer { fd.closeQuietly() }
        let bytes = Array(text.utf8)
        let result: Result<Void, Errno> = bytes.withUnsafeBytes { b in Result { () throws(Errno) in try fd.writeFully(b) } }
        try result.get()
    }
}
