import Foundation
@testable import StrataCLI
import Testing

@Suite("storage.conf: which files are read")
struct ConfigSourcesTests {
    /// A scratch tree standing for /usr/share/containers, /etc/containers and a user's ~/.config.
    final class Tree {
        let base: String
        init() throws {
            base = try makeScratchDirectory("strata-sources")
            for dir in ["usr", "etc", "home/.config/containers", "xdg/containers"] {
                try FileManager.default.createDirectory(atPath: base + "/" + dir, withIntermediateDirectories: true)
            }
        }
        deinit { removeScratchDirectory(base) }

        @discardableResult
        func write(_ relative: String, _ text: String = "[storage]\n") throws -> String {
            let path = base + "/" + relative
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            return path
        }

        func sources(_ environment: [String: String] = [:], userID: UInt32 = 0) -> ConfigSources {
            var sources = ConfigSources(environment: environment, userID: userID)
            sources.systemDirectories = [base + "/usr", base + "/etc"]
            return sources
        }
    }

    @Test("without --config: $CONTAINERS_STORAGE_CONF when set, else no file")
    func noOption() throws {
        let tree = try Tree()
        try tree.write("etc/storage.conf")
        #expect(try tree.sources().files(forConfigOption: nil) == [])
        #expect(try tree.sources(["CONTAINERS_STORAGE_CONF": "/x.conf"]).files(forConfigOption: nil) == ["/x.conf"])
        #expect(try tree.sources(["CONTAINERS_STORAGE_CONF": "/x.conf"]).files(forConfigOption: "/y.conf") == ["/y.conf"])
    }

    @Test("--config system: /etc's file over /usr/share's, then the drop-ins by name, a later directory's replacing")
    func system() throws {
        let tree = try Tree()
        #expect(try tree.sources().files(forConfigOption: "system") == [])
        let usr = try tree.write("usr/storage.conf")
        #expect(try tree.sources().files(forConfigOption: "system") == [usr])
        let etc = try tree.write("etc/storage.conf")
        try tree.write("usr/storage.conf.d/10-a.conf")
        let c = try tree.write("usr/storage.conf.d/30-c.conf")
        let a = try tree.write("etc/storage.conf.d/10-a.conf")
        let b = try tree.write("etc/storage.conf.d/20-b.conf")
        try tree.write("etc/storage.conf.d/README")
        try tree.write("etc/storage.conf.d/.hidden.conf")
        try FileManager.default.createDirectory(atPath: tree.base + "/etc/storage.conf.d/sub.conf", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: tree.base + "/etc/storage.conf.d/25-link.conf", withDestinationPath: b)
        try FileManager.default.createSymbolicLink(atPath: tree.base + "/etc/storage.conf.d/26-dangling.conf", withDestinationPath: "/nonexistent")
        let link = tree.base + "/etc/storage.conf.d/25-link.conf"
        #expect(try tree.sources().files(forConfigOption: "system") == [etc, a, b, link, c])
        // The variable names the one file, as for containers/storage.
        #expect(try tree.sources(["CONTAINERS_STORAGE_CONF": "/x.conf"]).files(forConfigOption: "system") == ["/x.conf"])
        // Root does not read a user's files, whatever its environment says.
        try tree.write("xdg/containers/storage.conf")
        #expect(try tree.sources(["XDG_CONFIG_HOME": tree.base + "/xdg"]).files(forConfigOption: "system") == [etc, a, b, link, c])
    }

    @Test("--config system for a user other than root: the user's file first, the user's drop-ins last")
    func user() throws {
        let tree = try Tree()
        let etc = try tree.write("etc/storage.conf")
        let home = try tree.write("home/.config/containers/storage.conf")
        let homeDropIn = try tree.write("home/.config/containers/storage.conf.d/10-a.conf")
        try tree.write("etc/storage.conf.d/10-a.conf")
        let environment = ["HOME": tree.base + "/home"]
        #expect(try tree.sources(environment, userID: 1000).files(forConfigOption: "system") == [home, homeDropIn])
        let xdg = try tree.write("xdg/containers/storage.conf")
        #expect(try tree.sources(environment.merging(["XDG_CONFIG_HOME": tree.base + "/xdg"]) { $1 }, userID: 1000)
            .files(forConfigOption: "system") == [xdg, tree.base + "/etc/storage.conf.d/10-a.conf"])
        try FileManager.default.removeItem(atPath: home)
        #expect(try tree.sources(environment, userID: 1000).files(forConfigOption: "system") == [etc, homeDropIn])
    }
}
