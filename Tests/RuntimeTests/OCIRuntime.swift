import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The user namespace of the tests: container 0 → host 100000, 65536 IDs (uids and gids alike);
/// a layer remapped after use moves to `remappedBase`.
enum UserNamespace {
    static let hostBase: UInt32 = 100000
    static let remappedBase: UInt32 = 200000
    static let size: UInt32 = 65536
    static let mapping = mapping(at: hostBase)
    static func mapping(at base: UInt32) -> String { "0:\(base):\(size)" }
}

/// An OCI runtime from Debian, run the way its users run it: a bundle whose `config.json` is the
/// runtime's own (`runc spec` / `crun spec`), edited for the test.
enum OCIRuntime: String, CaseIterable, CustomStringConvertible {
    case runc, crun

    var description: String { rawValue }

    /// Where Debian installs it (runc in /usr/sbin, crun in /usr/bin), else the first in PATH order.
    var path: String {
        let candidates = ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"].map { $0 + "/" + rawValue }
        return candidates.first(where: installed) ?? candidates[0]
    }
    var isInstalled: Bool { installed(path) }

    /// Writes the runtime's default `config.json` into `bundle`, then edits it: the root is
    /// `rootPath` and writable, the process is `args` without a terminal, with the capabilities
    /// `su` and file writes need; with `hostBase`, a user namespace mapping container 0 there
    /// (65536 IDs, uids and gids alike).
    func makeBundle(at bundle: String, rootPath: String, args: [String], hostBase: UInt32?) throws {
        try FileManager.default.createDirectory(atPath: bundle, withIntermediateDirectories: true)
        let configPath = bundle + "/config.json"
        try? FileManager.default.removeItem(atPath: configPath)  // a bundle's earlier run; `spec` will not overwrite
        try mustRun(path, ["spec", "--bundle", bundle])
        guard var spec = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as? [String: Any],
              var process = spec["process"] as? [String: Any],
              var linux = spec["linux"] as? [String: Any],
              var namespaces = linux["namespaces"] as? [[String: Any]]
        else { throw ProgramFailure([path, "spec"], "unexpected config.json in \(bundle)") }

        process["args"] = args
        process["terminal"] = false
        // The default set (AUDIT_WRITE, KILL, NET_BIND_SERVICE) cannot `su` to uid 1 and 1000.
        if var capabilities = process["capabilities"] as? [String: [String]] {
            for key in ["bounding", "effective", "permitted"] {
                capabilities[key, default: []] += ["CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"]
            }
            process["capabilities"] = capabilities
        }
        spec["process"] = process
        spec["root"] = ["path": rootPath, "readonly": false]
        spec["hostname"] = "strata-\(rawValue)"
        if let hostBase {
            namespaces.append(["type": "user"])
            let mapping: [[String: Any]] = [["containerID": 0, "hostID": Int(hostBase), "size": Int(UserNamespace.size)]]
            linux["uidMappings"] = mapping
            linux["gidMappings"] = mapping
        }
        linux["namespaces"] = namespaces
        if self == .crun && !hasCapability(CAP_SYS_RESOURCE_BIT),
           var resources = linux["resources"] as? [String: Any] {
            // On cgroup v2 crun enforces `linux.resources.devices` with an eBPF program, and
            // before loading it raises RLIMIT_MEMLOCK to unlimited, which needs CAP_SYS_RESOURCE.
            // This machine's root lacks that capability (CapEff has no bit 24; crun then fails
            // with "setrlimit (RLIM_MEMLOCK): Operation not permitted"), so here the spec's device
            // rule (deny all) is left out for crun; on a host whose root has CAP_SYS_RESOURCE the
            // runtime's own rule stays.
            resources["devices"] = nil
            linux["resources"] = resources
        }
        spec["linux"] = linux
        try JSONSerialization.data(withJSONObject: spec, options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: configPath))
    }

    /// Runs the bundle's container to its end in the foreground (`run`), with its state under
    /// `stateRoot`, and returns what its process printed.
    ///
    /// runc runs as it is: it finds cgroup v1 controllers and uses them, and it needs no
    /// `--no-pivot` (its help: "should be used whenever the rootfs is on top of a ramdisk"; here
    /// the host's / is a disk filesystem and runc's pivot_root into the merged overlay mount
    /// works, rootful and in a user namespace; `--no-pivot` would only chroot, leaving the old
    /// root reachable through mounts inside, a weaker jail).
    ///
    /// crun 1.8.1 refuses this host's hybrid cgroup layout (v1 controllers, and a cgroup2
    /// hierarchy at /sys/fs/cgroup/unified that holds one controller, hugetlb): "cgroups in
    /// hybrid mode not supported, drop all controllers from cgroupv2"; `--cgroup-manager=disabled`
    /// does not get past that check. So crun runs in a private mount namespace (`unshare -m`, private
    /// propagation) where the host's cgroup2 hierarchy is mounted at /sys/fs/cgroup: there crun
    /// sees a unified host, as on a current distribution, and creates and removes the
    /// container's cgroup in the real v2 hierarchy. Strata's mounts, made before, are inherited.
    func run(bundle: String, id: String, stateRoot: String) throws -> ProgramResult {
        let state = stateRoot + "/" + rawValue
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let runArguments = ["--root", state, "run", "--bundle", bundle, id]
        switch self {
        case .runc:
            return try runProgram(path, runArguments)
        case .crun:
            return try runProgram("/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c",
                                                       "mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec \"$@\"", "sh",
                                                       path] + runArguments)
        }
    }

    /// The containers the runtime still knows under `stateRoot` (should be none after `run`).
    func listed(stateRoot: String) throws -> [String] {
        let state = stateRoot + "/" + rawValue
        guard FileManager.default.fileExists(atPath: state) else { return [] }
        let text = try mustRun(path, ["--root", state, "list", "-q"])
        return text.split(separator: "\n").map(String.init)
    }
}

private let CAP_SYS_RESOURCE_BIT = 24

/// Whether this process has capability `bit` in its effective set (from /proc/self/status).
func hasCapability(_ bit: Int) -> Bool {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
          let mask = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
    else { return false }
    return mask & (1 << UInt64(bit)) != 0
}
