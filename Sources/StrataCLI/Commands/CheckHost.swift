import ArgumentParser
import GraphDriver
import IDShift
import MountLabel
import ProjectQuota
import StrataSystem
import SystemPackage

/// Checks a host for what Strata needs and can use, without touching any store.
struct CheckHost: ParsableCommand {
    static let configuration = CommandConfiguration.subcommand(
        "check-host", abstract: "Check this host for what Strata needs: overlay, d_type, the new mount API, idmapped mounts, project quotas, SELinux.",
        example: "strata check-host --root /var/lib/strata")

    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print a JSON object.") var json = false

    /// One finding: whether it is there, whether Strata needs it, and what to do about it.
    struct Finding {
        var name: String
        var present: Bool
        var required: Bool
        var detail: String
    }

    func run() throws {
        // The same root as every other command: --root, else the configuration's graphroot.
        let root = FilePath(try global.resolvedSettings().root)
        let probeDir = Self.nearestExisting(root)
        var findings: [Finding] = []

        var filesystems = ""
        if let fd = try? FileDescriptor.currentWorkingDirectory.open(at: "/proc/filesystems", .readOnly) {
            filesystems = (try? String(decoding: fd.readToEnd(), as: UTF8.self)) ?? ""
            fd.closeQuietly()
        }
        let hasOverlay = filesystems.split(separator: "\n").contains { $0.hasSuffix("\toverlay") }
        findings.append(Finding(name: "overlay filesystem", present: hasOverlay, required: true,
                                detail: hasOverlay ? "in /proc/filesystems" : "load it with `modprobe overlay`"))

        let fs = try? FileSystemStatus.of(probeDir)
        let usable = fs.map { ![.overlay, .aufs, .ecryptfs, .nfs].contains($0.type) } ?? false
        findings.append(Finding(name: "backing filesystem", present: usable, required: true,
                                detail: "\(probeDir): \(fs?.type.description ?? "unknown")"
                                    + (usable ? "" : " cannot hold overlay upper layers")))

        let dType = Self.probeDType(probeDir)
        findings.append(Finding(name: "d_type", present: dType, required: true,
                                detail: dType ? "directory entries carry their file type"
                                    : "the filesystem does not report file types (XFS needs ftype=1)"))

        var newAPI = false
        do throws(Errno) {
            let context = try FileSystemContext(type: "overlay")
            _ = context
            newAPI = true
        } catch {}
        findings.append(Finding(name: "new mount API", present: newAPI, required: false,
                                detail: newAPI ? "fsopen(overlay) works: options are passed one by one, not in one page of mount data"
                                    : "fsopen is missing: stacks are limited to what fits in one page of mount data"))

        let idmapped = IdmappedMount.supportsIdmappedMounts(at: probeDir)
        findings.append(Finding(name: "idmapped mounts", present: idmapped, required: false,
                                detail: idmapped ? "layers can be shown shifted at mount time, with no copy"
                                    : "user-namespaced containers need their layers chowned (slower)"))

        let quota: String
        var quotaOK = false
        do throws(StorageError) {
            _ = try ProjectQuotaControl(home: probeDir)
            quotaOK = true
            quota = "per-container size and inode limits can be set"
        } catch {
            quota = error.reason
        }
        findings.append(Finding(name: "project quotas", present: quotaOK, required: false, detail: quota))

        let selinux = MountLabel.SELinux.isEnabled
        findings.append(Finding(name: "SELinux", present: selinux, required: false,
                                detail: selinux ? "mounts are labeled with the container's context"
                                    : "off: mounts carry no context= label"))

        let text = findings.map { finding in
            let mark = finding.present ? "ok     " : finding.required ? "MISSING" : "no     "
            return "\(mark) \(finding.name): \(finding.detail)\n"
        }
        let members: [(String, JSONValue)] = findings.map {
            ($0.name, .object([("present", .bool($0.present)), ("required", .bool($0.required)), ("detail", .string($0.detail))]))
        }
        CommandOutput(text: text.joined(), json: .object(members), layout: .oneMemberPerLine).write(json: json)
        if findings.contains(where: { $0.required && !$0.present }) { throw ExitCode(1) }
    }

    static func nearestExisting(_ path: FilePath) -> FilePath {
        var candidate = path
        while !candidate.isEmpty && candidate != "/" && !FileDescriptor.currentWorkingDirectory.exists(at: candidate) {
            candidate = candidate.removingLastComponent()
        }
        return candidate.isEmpty ? "/" : candidate
    }

    /// Whether a fresh entry in `dir` comes back from getdents with its type.
    static func probeDType(_ dir: FilePath) -> Bool {
        let name = ".strata-dtype-probe-\(UInt32.random(in: 0...UInt32.max))"
        guard let fd = try? FileDescriptor.openDirectory(dir) else { return false }
        defer { fd.closeQuietly() }
        guard (try? fd.makeDirectory(at: FilePath(name))) != nil else { return false }
        defer { try? fd.remove(at: FilePath(name), directory: true) }
        return (try? fd.directoryEntries().first { $0.name == name }?.kind == .directory) ?? false
    }
}
