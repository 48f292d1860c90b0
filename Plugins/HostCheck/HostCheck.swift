import Foundation
import PackagePlugin

/// `swift package check-host [--root DIR] [--json]`
///
/// Builds the `strata` command and runs `strata check-host`: whether this machine has what a
/// Strata store needs (overlayfs, a backing filesystem with d_type) and what it can use (the new
/// mount API, idmapped mounts, project quotas, SELinux), each with what to do when it is missing.
/// Useful before deploying an application built on Strata to a host. Most probes need root.
@main
struct HostCheck: CommandPlugin {
    func performCommand(context: PluginContext, arguments: [String]) async throws {
        var parameters = PackageManager.BuildParameters()
        parameters.configuration = .debug
        parameters.logging = .concise
        let build = try packageManager.build(.product("strata"), parameters: parameters)
        guard build.succeeded, let strata = build.builtArtifacts.first(where: { $0.kind == .executable && $0.url.lastPathComponent == "strata" }) else {
            Diagnostics.error("check-host: building strata failed\n\(build.logText)")
            throw HostCheckError.buildFailed
        }
        let process = Process()
        process.executableURL = strata.url
        process.arguments = ["check-host"] + arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw HostCheckError.missingFeatures }
    }
}

enum HostCheckError: Error, CustomStringConvertible {
    case buildFailed, missingFeatures

    var description: String {
        switch self {
        case .buildFailed: "could not build the strata command"
        case .missingFeatures: "this host lacks something Strata needs (see the MISSING lines)"
        }
    }
}
