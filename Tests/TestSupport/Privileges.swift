import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Whether the tests run as root (the CI machine does; many tests need it).
public let runningAsRoot = geteuid() == 0

/// The trait of a test or suite that needs root, with the reason shown when it is skipped.
public let needsRoot = Testing.ConditionTrait.enabled(
    if: runningAsRoot, "needs root: mounts, chown, device nodes, trusted.* xattrs, project IDs")
