#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Testing
import TestSupport
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
            base = try makeScratchDirectory("strata-label", in: temporaryBase)
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
            removeScratchDirectory(base)
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

    /// `strata mount --label` with categories the loaded policy does not define (it has c0-c3
    /// and c1023, not c5): one error line naming the level, and no mount made.
    @Test func strataRefusesAnUndefinedCategoryBeforeMount() throws {
        let base = try makeScratchDirectory("strata-cli-label", in: temporaryBase)
        defer {
            _ = try? runStrata(base, ["cleanup"])
            removeScratchDirectory(base)
        }
        #expect(try runStrata(base, ["create-layer", "image"]).status == 0)
        #expect(try runStrata(base, ["create-layer", "container", "--parent", "image", "--rw"]).status == 0)
        func containerMounted() -> Bool {
            let table = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
            return table.split(separator: "\n").contains { $0.split(separator: " ").dropFirst(4).first?.hasPrefix(base) == true
                && $0.contains("/container/merged") }
        }

        let bad = "system_u:object_r:container_file_t:s0:c5"
        #expect(!SELinux.isValid(context: bad))
        let refused = try runStrata(base, ["mount", "container", "--label", bad])
        #expect(refused.status == 1)
        #expect(refused.stderr == "strata: label mount: '\(bad)' is not a valid context in the loaded SELinux policy: "
                + "its level 's0:c5' is not valid (its user, role and type are)\n", "\(refused.stderr)")
        #expect(!containerMounted(), "a mount was made")

        let unknownType = "system_u:object_r:strata_no_such_type_t:s0"
        let refusedType = try runStrata(base, ["mount", "container", "--label", unknownType])
        #expect(refusedType.status == 1 && refusedType.stderr.contains("its type 'strata_no_such_type_t' is not valid"),
                "\(refusedType.stderr)")

        // Categories the policy defines mount, and label the files.
        let good = "system_u:object_r:container_file_t:s0:c1,c2"
        let mounted = try runStrata(base, ["mount", "container", "--label", good])
        #expect(mounted.status == 0, "\(mounted.stderr)")
        let merged = mounted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(containerMounted())
        #expect(try SELinux.label(ofPath: merged) == good)
        #expect(try runStrata(base, ["unmount", "container"]).status == 0)
    }

    @Test func contextWithATypeTheKernelDoesNotKnowIsRefused() throws {
        let unknown = "system_u:object_r:strata_no_such_type_t:s0"
        #expect(!SELinux.isValid(context: unknown))
        let dirs = try OverlayDirs()
        defer { dirs.remove() }
        #expect(dirs.mount(context: unknown) == EINVAL)
    }
}

/// Runs `strata` on a store under `base`, with the global options before the subcommand;
/// returns its status and what it printed on each stream.
func runStrata(_ base: String, _ arguments: [String]) throws -> ProgramResult {
    try capture(strataBinary(), ["--root", base + "/root", "--run-root", base + "/run"] + arguments)
}
