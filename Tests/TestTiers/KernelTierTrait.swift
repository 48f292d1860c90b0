import Testing

/// Marks a test or suite as needing kernel features this machine may lack.
///
/// - On a kernel without them the test is skipped, with the probe's reason and how to run it in
///   the kernel tier.
/// - In the kernel tier's guest (`STRATA_KERNEL_TIER=1`) the test runs; a feature missing there
///   means the guest is broken, so the test fails with the reason rather than being skipped.
/// - On a machine that has the features (an XFS with `prjquota` mounted, SELinux on) it runs there
///   too.
///
/// ```swift
/// @Test(.kernelTier(.xfsProjectQuota)) func writeOverQuotaFails() throws { … }
/// @Suite(.kernelTier(.selinux)) struct MountLabelTests { … }
/// ```
public struct KernelTierTrait: TestTrait, SuiteTrait {
    public var features: [KernelFeature]

    public var isRecursive: Bool { true }

    public var comments: [Comment] {
        [Comment(rawValue: "kernel tier: needs \(features.map(\.description).joined(separator: ", "))")]
    }

    public func prepare(for test: Test) async throws {
        for feature in features {
            guard case .unavailable(let why) = feature.availability else { continue }
            if KernelTier.isGuest {
                throw FeatureUnavailable(
                    feature: feature, reason: "missing in the kernel tier's guest, which should have it: \(why)")
            }
            let reason = "needs \(feature) [kernel tier]: \(why); \(KernelTier.howToRun)"
            try await ConditionTrait.disabled(Comment(rawValue: reason)).prepare(for: test)
        }
    }
}

extension Trait where Self == KernelTierTrait {
    /// The test needs these kernel features; see ``KernelTierTrait``.
    public static func kernelTier(_ features: KernelFeature...) -> Self {
        KernelTierTrait(features: features)
    }
}
