import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a finished program left: its exit status and its two output streams.
public struct ProgramResult: CustomStringConvertible, Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }

    public var description: String { "exit status \(status); stderr: \(stderr.trimmingCharacters(in: .whitespacesAndNewlines))" }
}

/// Runs a program to its end and captures its status and output. `input` is written to its
/// standard input (else it reads /dev/null); `environment`, when given, is its whole
/// environment; `directory` is its working directory; after `timeout` seconds it is killed.
public func capture(_ executable: String, _ arguments: [String], input: [UInt8]? = nil,
                    environment: [String: String]? = nil, in directory: String? = nil,
                    timeout: TimeInterval? = nil) throws -> ProgramResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe(), err = Pipe(), inPipe = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
    try process.run()
    let killer = DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
    if let timeout { DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer) }
    // Standard error is read (and the input written) on other threads, so that no pipe can fill
    // up and stall the child.
    final class Box: @unchecked Sendable { var data = Data() }
    let errors = Box()
    let group = DispatchGroup()
    let errHandle = err.fileHandleForReading
    group.enter()
    DispatchQueue.global().async {
        errors.data = errHandle.readDataToEndOfFile()
        group.leave()
    }
    if let input {
        let writer = inPipe.fileHandleForWriting
        group.enter()
        DispatchQueue.global().async {
            try? writer.write(contentsOf: input)
            try? writer.close()
            group.leave()
        }
    }
    let output = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    killer.cancel()
    return ProgramResult(status: process.terminationStatus, stdout: String(decoding: output, as: UTF8.self),
                         stderr: String(decoding: errors.data, as: UTF8.self))
}

/// A program that exited with a non-zero status, with its command line and what it wrote to
/// standard error.
public struct CommandFailed: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// Runs a program and returns its standard output; throws ``CommandFailed`` with its standard
/// error when it exits non-zero. `input` is written to its standard input (else it reads
/// /dev/null); `environment` is added to this process's.
@discardableResult
public func run(_ executable: String, _ arguments: [String], input: [UInt8]? = nil,
                environment extra: [String: String] = [:]) throws -> String {
    let environment = extra.isEmpty ? nil : ProcessInfo.processInfo.environment.merging(extra) { $1 }
    let result = try capture(executable, arguments, input: input, environment: environment)
    guard result.status == 0 else {
        throw CommandFailed(description: "\(executable) \(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr)")
    }
    return result.stdout
}

/// Runs a shell command line with `/bin/sh -c` (as user and group `uid`, with no supplementary
/// groups, when given) and returns its standard output; throws ``CommandFailed`` when it fails.
@discardableResult
public func sh(_ script: String, as uid: UInt32? = nil) throws -> String {
    if let uid {
        return try run("/usr/bin/setpriv", ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "/bin/sh", "-c", script])
    }
    return try run("/bin/sh", ["-c", script])
}

/// The `strata` binary of this build: beside the test bundle, in the build directory.
public func strataBinary() -> String { builtStrata }

private let builtStrata: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
    // The test binary lives in StrataPackageTests.xctest/… or directly in the build directory.
    while !FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("strata").path) && dir.path != "/" {
        dir = dir.deletingLastPathComponent()
    }
    return dir.appendingPathComponent("strata").path
}()
