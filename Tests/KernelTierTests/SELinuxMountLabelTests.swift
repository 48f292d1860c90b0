#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Testing
import TestTiers

/// The kernel tier's own check that SELinux labels are real in its guest: an overlay mounted with
/// `context=` shows that label on every file, read back from `security.selinux`.
@Suite(.kernelTier(.selinux), .serialized)
struct SELinuxMountLabelTests {
    static let label = "system_u:object_r:container_file_t:s0"

    /// lower/upper/work/merged under TMPDIR (overlayfs refuses an upper directory on overlayfs,
    /// so the guest's TMPDIR is a tmpfs).
    struct OverlayDirs {
        let base: String
        var lower: String { base + "/lower" }
        var upper: String { base + "/upper" }
        var work: String { base + "/work" }
        var merged: String { base + "/merged" }

        init() throws {
            base = try temporaryDirectory("strata-label")
            for dir in [lower, lower + "/dir", upper, work, merged] { mkdir(dir, 0o755) }
            #expect(writeFile(lower + "/file", bytes: 10) == nil)
            #expect(writeFile(lower + "/dir/nested", bytes: 10) == nil)
        }

        /// mount(2) directly: mount(8) would drop `context=` silently when SELinux is off.
        func mount(context: String) -> Int32? {
            let data = "context=\"\(context)\",lowerdir=\(lower),upperdir=\(upper),workdir=\(work)"
            return Glibc.mount("overlay", merged, "overlay", 0, data) == 0 ? nil : errno
        }

        func remove() {
            umount2(merged, Int32(MNT_DETACH))
            removeTree(base)
        }
    }

    @Test func policyIsLoaded() {
        #expect(SELinux.isPolicyLoaded)
        #expect(SELinux.isValid(context: Self.label), "the loaded policy has no container_file_t")
        if KernelTier.isGuest {
            #expect(!SELinux.isEnforcing, "the kernel tier's guest runs permissive")
        }
    }

    @Test func overlayMountedWithContextShowsTheLabel() throws {
        try #require(SELinux.isValid(context: Self.label), "the loaded policy has no container_file_t")
        let dirs = try OverlayDirs()
        defer { dirs.remove() }
        let failure = dirs.mount(context: Self.label)
        try #require(failure == nil, "mount with context= failed: \(String(cString: strerror(failure ?? 0)))")

        for path in ["", "/file", "/dir", "/dir/nested"] {
            #expect(try SELinux.label(ofPath: dirs.merged + path) == Self.label, "label of merged\(path)")
        }
        // A file made through the mount gets the mount's label as well.
        #expect(writeFile(dirs.merged + "/new", bytes: 10) == nil)
        #expect(try SELinux.label(ofPath: dirs.merged + "/new") == Self.label)
    }

    @Test func contextWithATypeTheKernelDoesNotKnowIsRefused() throws {
        let unknown = "system_u:object_r:strata_no_such_type_t:s0"
        #expect(!SELinux.isValid(context: unknown))
        let dirs = try OverlayDirs()
        defer { dirs.remove() }
        #expect(dirs.mount(context: unknown) == EINVAL)
    }
}
