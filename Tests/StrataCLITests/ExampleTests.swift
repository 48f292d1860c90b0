import Foundation
import Testing

/// Runs the example programs that this machine supports (they are built with the package).
@Suite("Examples", .serialized)
struct ExampleTests {
    static func run(_ name: String, _ arguments: [String] = []) throws -> (status: Int32, output: String) {
        let binary = URL(fileURLWithPath: strataBinary()).deletingLastPathComponent().appendingPathComponent(name).path
        return try runProgram(binary, arguments)
    }

    @Test("OverlayExample builds a layer, mounts a container on it and shows its changes and diff")
    func overlay() throws {
        let (status, output) = try Self.run("OverlayExample")
        #expect(status == 0, "\(output)")
        #expect(output.contains("D /etc/motd") && output.contains("A /etc/hostname"))
        #expect(output.contains("etc/.wh.motd"))
    }

    @Test("IDShiftExample shifts a tree and shows owners, ACLs and capabilities before and after")
    func idShift() throws {
        let (status, output) = try Self.run("IDShiftExample")
        #expect(status == 0, "\(output)")
        #expect(output.contains("200000"))
    }

    @Test("MountLabelExample says whether SELinux is on and what a label becomes")
    func mountLabel() throws {
        let (status, output) = try Self.run("MountLabelExample")
        #expect(status == 0, "\(output)")
        #expect(output.contains("SELinux enabled:"))
    }

    @Test("ProjectQuotaExample says what it needs on a filesystem without project quotas",
          .enabled(if: !(try! String(contentsOfFile: "/proc/mounts", encoding: .utf8)).contains("prjquota"), "a prjquota filesystem is mounted here"))
    func projectQuotaUnsupported() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("strata-pq-example-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (status, output) = try Self.run("ProjectQuotaExample", [dir])
        #expect(status == 1)
        #expect(output.contains("prjquota"))
    }
}
