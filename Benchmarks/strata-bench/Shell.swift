import Foundation
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// What one child process cost.
struct ChildUsage {
    /// Wall-clock time from spawn to reaped exit.
    var seconds: Double
    /// Peak resident set size, in bytes (`ru_maxrss`).
    var peakResidentBytes: Int64
    /// The exit status (or 128 + signal).
    var status: Int32
}

/// A failure of the benchmark harness itself (not of a timed operation's result).
struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum Shell {
    /// Seconds on the monotonic clock.
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Spawns `arguments` (looked up in PATH), waits for it with `wait4`, and reports its wall
    /// time and its own peak RSS (wait4's rusage covers that one child only).
    static func measure(_ arguments: [String], stdoutTo outputPath: String? = nil) throws -> ChildUsage {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let outputPath {
            posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Start the child with no signal blocked, whatever this thread blocks.
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))

        let cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid: pid_t = 0
        let start = now()
        let spawned = posix_spawnp(&pid, arguments[0], &actions, &attributes, cArguments, environ)
        guard spawned == 0 else {
            throw BenchError("cannot run \(arguments[0]): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) == -1 {
            guard errno == EINTR else { throw BenchError("wait4: \(String(cString: strerror(errno)))") }
        }
        let elapsed = now() - start
        let exitStatus = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return ChildUsage(seconds: elapsed, peakResidentBytes: Int64(usage.ru_maxrss) * 1024, status: exitStatus)
    }

    /// GNU time, which reports its child's `ru_maxrss` from `wait4`.
    static let gnuTime = "/usr/bin/time"

    /// Like `measure(_:stdoutTo:)`, with the peak RSS taken from GNU time run around the command.
    ///
    /// A child spawned straight from this process would not do: at `execve` the kernel folds the
    /// high-water RSS of the memory it leaves (with posix_spawn's vfork, this process's whole
    /// ~20 MiB; with fork, its copied pages) into the child's `ru_maxrss`. GNU time is a small C
    /// program, so the command it forks and `wait4`s starts from almost nothing: `tar -x` reads
    /// about 2.7 MiB there, against 22.8 MiB measured directly.
    static func measureWithPeakRSS(_ arguments: [String], stdoutTo outputPath: String? = nil,
                                   scratchFile: String) throws -> ChildUsage {
        unlink(scratchFile)
        var usage = try measure([gnuTime, "-q", "-f", "%M", "-o", scratchFile] + arguments, stdoutTo: outputPath)
        let fd = open(scratchFile, O_RDONLY)
        guard fd >= 0 else { throw BenchError("GNU time wrote no report for \(arguments[0])") }
        defer { close(fd); unlink(scratchFile) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = read(fd, &buffer, buffer.count)
        let text = String(decoding: buffer[0..<max(0, n)], as: UTF8.self)
        guard let last = text.split(separator: "\n").last, let kib = Int64(last.trimmed(of: " ")) else {
            throw BenchError("cannot read GNU time's report: \(text)")
        }
        usage.peakResidentBytes = kib * 1024
        return usage
    }

    /// Installs a Debian package when `command` is missing.
    static func ensureCommand(_ command: String, package: String, log: (String) -> Void) throws {
        if hasCommand(command) || access(command, X_OK) == 0 { return }
        log("installing \(package)")
        try run(["apt-get", "update", "-qq"])
        try run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package])
    }

    /// Writes a line to standard output at once (unbuffered, so that progress and the log on
    /// standard error stay in order when both go to a file).
    static func emit(_ line: String = "") {
        var text = line + "\n"
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = write(1, bytes.baseAddress! + offset, bytes.count - offset)
                if n <= 0 { if errno == EINTR { continue }; return }
                offset += n
            }
        }
    }

    /// Runs a helper command (mkfs, mount, tar for fixtures…) and fails when it fails.
    static func run(_ arguments: [String], quiet: Bool = false) throws {
        let usage = try measure(arguments, stdoutTo: quiet ? "/dev/null" : nil)
        guard usage.status == 0 else {
            throw BenchError("`\(arguments.joined(separator: " "))` exited with status \(usage.status)")
        }
    }

    /// Whether `name` is an executable in PATH (or the sbin directories).
    static func hasCommand(_ name: String) -> Bool {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/sbin"
        return path.split(separator: ":").contains { access("\($0)/\(name)", X_OK) == 0 }
    }

    /// The path of this executable, so it can run its own hidden subcommands as children.
    static func selfExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                     : CommandLine.arguments[0]
    }

    /// Flushes dirty pages and, when asked, drops the page, dentry and inode caches.
    static func settle(dropCaches: Bool) throws {
        sync()
        guard dropCaches else { return }
        let fd = open("/proc/sys/vm/drop_caches", O_WRONLY)
        guard fd >= 0 else { throw BenchError("cannot open /proc/sys/vm/drop_caches (root needed)") }
        defer { close(fd) }
        guard write(fd, "3\n", 2) == 2 else { throw BenchError("cannot drop caches") }
    }

    /// Reads a file to the end so that it sits in the page cache.
    static func warm(_ path: String) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        while read(fd, buffer, 1 << 20) > 0 {}
    }

    /// The size of a file in bytes (0 when absent).
    static func fileSize(_ path: String) -> Int64 {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : 0
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// The lines of a text file (empty when it cannot be read).
    static func readLines(_ path: String) -> [String] {
        guard let fd = try? FileDescriptor.currentWorkingDirectory.open(at: FilePath(path), .readOnly) else { return [] }
        defer { fd.closeQuietly() }
        let bytes = (try? fd.readToEnd()) ?? []
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// Makes `path` absolute against the current directory.
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return FilePath(path).lexicallyNormalized().string }
        return FilePath(FileManager.default.currentDirectoryPath).appending(path).lexicallyNormalized().string
    }
}
