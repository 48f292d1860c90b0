import DriverConformance
import Foundation
import GraphDriver
import Overlay
import StrataSystem
import SystemPackage
import Testing

/// A test shifter that makes idmapped clones the way the kernel allows: a user namespace
/// holding `mappings` (from a throwaway `unshare --user sleep`), attached with `mount_setattr`.
/// It rewrites no files (`shift` refuses real changes), which is all `get` needs.
struct UnshareShifter: OwnershipShifter {
    func shift(_ tree: FilePath, from: IDMappings, to: IDMappings, ignoreChownErrors: Bool) throws(StorageError) {
        try NoShifting().shift(tree, from: from, to: to, ignoreChownErrors: ignoreChownErrors)
    }

    func supportsIdmappedMounts(_ mappings: IDMappings) -> Bool { true }

    func idmappedMount(of path: FilePath, mappings: IDMappings) throws(StorageError) -> FileDescriptor {
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        holder.arguments = ["--user", "sleep", "10"]
        do { try holder.run() } catch { throw StorageError(.io, "start user namespace", reason: "\(error)") }
        // SIGKILL: the holder inherits a signal mask that may block SIGTERM.
        defer { kill(holder.processIdentifier, SIGKILL); holder.waitUntilExit() }
        let pid = holder.processIdentifier
        let ours = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/user")
        for _ in 0..<500 {
            let theirs = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/user")
            if let theirs, theirs != ours { break }
            usleep(2000)
        }
        func map(_ ranges: [IDMap]) -> String {
            (ranges.isEmpty ? "0 0 4294967295" : ranges.map { "\($0.containerID) \($0.hostID) \($0.size)" }.joined(separator: "\n")) + "\n"
        }
        // An idmapped mount shows an on-disk owner k as the host ID the namespace maps k to.
        for (file, text) in [("uid_map", map(mappings.uidMap)), ("gid_map", map(mappings.gidMap))] {
            guard let handle = FileHandle(forWritingAtPath: "/proc/\(pid)/\(file)") else {
                throw StorageError(.io, "write \(file)", reason: "cannot open it")
            }
            handle.write(Data(text.utf8))
            try? handle.close()
        }
        do throws(Errno) {
            let namespace = try FileDescriptor.currentWorkingDirectory.open(at: FilePath("/proc/\(pid)/ns/user"), flags: O_RDONLY)
            defer { namespace.closeQuietly() }
            let tree = try FileDescriptor.cloneMount(path)
            do throws(Errno) { try tree.setIDMapping(userNamespace: namespace) } catch {
                tree.closeQuietly()
                throw error
            }
            return tree
        } catch {
            throw StorageError("idmapped mount", path: path.string, errno: error)
        }
    }
}

@Suite("Idmapped mounts", needsRoot)
struct IdmapTests {
    @Test("get with ID mappings stacks idmapped lowers when the shifter can make them")
    func idmappedGet() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try OverlayDriver(home: store.home, runHome: store.runHome,
                                       options: DriverOptions(parsing: ["skip_mount_home=true"]), shifter: UnshareShifter())
        #expect(driver.status[4] == DriverStatusItem("Supports shifting", "true"))
        let layers = try buildChain(driver, count: 3)
        let mappings = IDMappings(uidMap: [IDMap(containerID: 0, hostID: 100_000, size: 65536)],
                                  gidMap: [IDMap(containerID: 0, hostID: 200_000, size: 65536)])
        let merged = try driver.get(layers[2], options: MountOptions(idMappings: mappings, readOnly: true))
        for i in 0..<3 {
            let st = try FileDescriptor.currentWorkingDirectory.status(at: merged.appending("file\(i)"))
            #expect(st.userID.rawValue == 100_000 && st.groupID.rawValue == 200_000, "file\(i): \(st.userID):\(st.groupID)")
        }
        try driver.put(layers[2])
        // On disk nothing changed.
        let disk = try FileDescriptor.currentWorkingDirectory.status(at: store.home.appending("layer0/diff/file0"))
        #expect(disk.userID.rawValue == 0)
        #expect(store.mounts().isEmpty)
    }
}
