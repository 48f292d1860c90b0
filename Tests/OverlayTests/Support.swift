import DriverConformance
import Foundation
import GraphDriver
import Overlay
import StrataSystem
import SystemPackage
// Every file of this target uses the shared helpers (needsRoot, sh, scratch directories).
@_exported import TestSupport
import Testing

/// A temporary home and run home on this machine's disk, with an overlay driver on them.
struct TemporaryStore {
    let root: FilePath
    var home: FilePath { root.appending("home") }
    var runHome: FilePath { root.appending("run") }

    init() throws {
        root = try Files.temporaryDirectory("strata-overlay-test")
    }

    /// A driver on this store (a new instance each call, sharing the directories).
    func driver(_ options: [String] = ["skip_mount_home=true"]) throws -> OverlayDriver {
        try OverlayDriver(home: home, runHome: runHome, options: DriverOptions(parsing: options))
    }

    /// The mount points below the store, deepest first.
    func mounts() -> [String] {
        Mounts.mountTable().map(\.mountPoint).filter { $0.hasPrefix(root.string + "/") || $0 == root.string }
            .sorted { $0.count > $1.count }
    }

    /// Unmounts everything below the store and deletes it.
    func destroy() {
        removeScratchDirectory(root.string)
    }
}

/// The conformance suite's factory for the overlay driver.
let overlayFactory: DriverFactory = {
    let store = try TemporaryStore()
    let driver = try store.driver()
    return DriverHarness(driver: driver) {
        try? driver.cleanup()
        store.destroy()
    }
}
