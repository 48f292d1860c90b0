import Foundation
import PackagePlugin

/// `swift package kernel-test [--filter REGEX]… [--configuration debug|release] [runner options]`
///
/// Builds the package's tests and runs the kernel tier: the Swift Testing suites that need kernel
/// features this machine may lack (XFS project quotas, SELinux), inside a user-mode-linux guest
/// booted once by `scripts/kernel-tier/run`. Fails when the guest does not boot, when a test
/// fails, when no test ran, or when a kernel-tier test was skipped in the guest.
///
/// Needs root and the guest's packages (see `mk/kernel-tier.mk`, or `make kernel-test`, which
/// installs them).
@main
struct KernelTest: CommandPlugin {
    /// The suites of the kernel tier, as Swift Testing `--filter` patterns (regular expressions
    /// over test IDs, which start with the test target's name): the quota and SELinux test targets,
    /// and any suite with `KernelTier` in its name (so another target can put its kernel-tier tests
    /// in, say, `OverlayKernelTierTests`). Keep in step with KERNEL_TIER_FILTERS in mk/kernel-tier.mk.
    static let defaultFilters = ["KernelTier", "^ProjectQuotaTests\\.", "^MountLabelTests\\."]

    func performCommand(context: PluginContext, arguments: [String]) async throws {
        var extractor = ArgumentExtractor(arguments)
        var filters = extractor.extractOption(named: "filter")
        if filters.isEmpty { filters = Self.defaultFilters }
        let configuration = extractor.extractOption(named: "configuration").last ?? "debug"
        let runnerOptions = extractor.remainingArguments

        var parameters = PackageManager.BuildParameters()
        parameters.configuration = configuration == "release" ? .release : .debug
        parameters.logging = .concise
        Diagnostics.remark("kernel-test: building the tests (\(configuration))")
        let build = try packageManager.build(.all(includingTests: true), parameters: parameters)
        guard build.succeeded else {
            Diagnostics.error("kernel-test: the build failed\n\(build.logText)")
            throw KernelTestError.buildFailed
        }

        let packageDirectory = context.package.directoryURL
        let bundle = try Self.testBundle(in: packageDirectory, named: context.package.displayName,
                                         configuration: configuration, build: build)
        let runner = packageDirectory.appending(path: "scripts/kernel-tier/run")

        let arguments = runnerOptions + ["--swift-testing", "--", bundle.path(percentEncoded: false),
                                         "--testing-library", "swift-testing"]
            + filters.flatMap { ["--filter", $0] }
        print("kernel-test: \(runner.path(percentEncoded: false)) \(arguments.joined(separator: " "))")
        let process = Process()
        process.executableURL = runner
        process.arguments = arguments
        process.currentDirectoryURL = packageDirectory
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw KernelTestError.runFailed(process.terminationStatus)
        }
    }

    /// `<Package>PackageTests.xctest` next to the built artifacts.
    static func testBundle(in packageDirectory: URL, named name: String, configuration: String,
                           build: PackageManager.BuildResult) throws -> URL {
        let file = "\(name)PackageTests.xctest"
        var candidates = build.builtArtifacts.map { $0.url.deletingLastPathComponent().appending(path: file) }
        candidates.append(packageDirectory.appending(path: ".build/\(configuration)/\(file)"))
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path(percentEncoded: false)) {
            return candidate
        }
        throw KernelTestError.noTestBundle(candidates.last!.path(percentEncoded: false))
    }
}

enum KernelTestError: Error, CustomStringConvertible {
    case buildFailed
    case noTestBundle(String)
    case runFailed(Int32)

    var description: String {
        switch self {
        case .buildFailed: "the build failed"
        case .noTestBundle(let path): "no test bundle at \(path)"
        case .runFailed(let status): "the kernel tier failed (runner exit status \(status))"
        }
    }
}
