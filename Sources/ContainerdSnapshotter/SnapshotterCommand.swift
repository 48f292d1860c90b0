import ArgumentParser
import Dispatch
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import GraphDriver
import Logging
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// `strata-snapshotter --socket PATH --root DIR [--config FILE]`: serves containerd's Snapshots
/// service for Strata on a unix socket, until SIGTERM or SIGINT.
///
/// containerd uses it as a proxy plugin (`[proxy_plugins.strata] type = "snapshot"
/// address = "PATH"`). Snapshots live in `DIR` (`metadata.db`, the driver home `overlay/`).
public struct SnapshotterCommand: AsyncParsableCommand {
    /// The command's name and help.
    public static let configuration = CommandConfiguration(
        commandName: "strata-snapshotter",
        abstract: "Serve containerd's Snapshots API (a proxy snapshotter) on Strata's overlay driver.",
        discussion: """
            containerd config: [proxy_plugins.strata] type = "snapshot", address = "<socket>"; then \
            ctr --snapshotter strata … or CRI's snapshotter = "strata". Labels: \
            \(SnapshotLabels.size), \(SnapshotLabels.inodes), \(SnapshotLabels.mountLabel), and the \
            \(SnapshotLabels.uidMapping)/\(SnapshotLabels.gidMapping) pair ctr run --remap-labels sends.
            """)

    @Option(help: ArgumentHelp("The unix socket to serve on.", valueName: "path"))
    var socket: String

    @Option(help: ArgumentHelp("The snapshotter's directory (metadata.db, overlay/).", valueName: "dir"))
    var root: String

    @Option(help: ArgumentHelp("A storage.conf-style file with a [snapshotter] section.", valueName: "file"))
    var config: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "notice"

    /// For ArgumentParser.
    public init() {}

    /// Parses the command line and serves; a `StorageError` becomes one line on stderr and exit
    /// status 1.
    public static func runMain() async -> Never {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            Glibc.exit(0)
        } catch let error as StorageError {
            var line = Array("strata-snapshotter: \(error)\n".utf8)
            _ = line.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
            Glibc.exit(1)
        } catch {
            exit(withError: error)
        }
    }

    /// Opens the store and serves until a signal.
    public func run() async throws {
        guard root.hasPrefix("/"), socket.hasPrefix("/") else {
            throw StorageError(.invalidArgument, "start snapshotter", reason: "--root and --socket must be absolute paths")
        }
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw StorageError(.invalidArgument, "start snapshotter", reason: "'\(logLevel)' is not a log level")
        }
        var logger = Logger(label: "strata.snapshotter")
        logger.logLevel = level
        var configuration = SnapshotterConfiguration(root: FilePath(root))
        if let config {
            let text = try readConfig(config)
            configuration = try SnapshotterConfiguration(root: FilePath(root), parsing: text, path: config)
        }
        let snapshotter = try Snapshotter(configuration: configuration)
        try prepareSocket()
        umask(0o077)  // the socket: root only, as containerd's own
        let server = GRPCServer(
            transport: .http2NIOPosix(address: .unixDomainSocket(path: socket), transportSecurity: .plaintext),
            services: [SnapshotsService(snapshotter: snapshotter, logger: logger)])
        let signals = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler { server.beginGracefulShutdown() }
            source.resume()
            return source
        }
        logger.notice("serving", metadata: ["socket": "\(socket)", "root": "\(root)"])
        try await server.serve()
        signals.forEach { $0.cancel() }
        unlink(socket)
        snapshotter.shutdown()
        logger.notice("stopped")
    }

    /// Removes a socket a previous run left (never anything else) and makes its directory.
    private func prepareSocket() throws(StorageError) {
        let path = FilePath(socket)
        do throws(Errno) {
            try FileDescriptor.currentWorkingDirectory.makeDirectories(at: path.removingLastComponent())
        } catch {
            throw StorageError("make socket directory", path: path.removingLastComponent().string, errno: error)
        }
        var st = stat()
        if lstat(socket, &st) == 0 {
            guard (st.st_mode & mode_t(S_IFMT)) == mode_t(S_IFSOCK) else {
                throw StorageError(.alreadyExists, "start snapshotter", path: socket, reason: "something other than a socket is there")
            }
            unlink(socket)
        }
    }

    private func readConfig(_ path: String) throws(StorageError) -> String {
        do {
            let fd = try FileDescriptor.open(FilePath(path), .readOnly)
            defer { try? fd.close() }
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = try buffer.withUnsafeMutableBytes { try fd.read(into: $0) }
                if n == 0 { break }
                bytes += buffer[0..<n]
                guard bytes.count <= 1 << 20 else { throw Errno.fileTooLarge }
            }
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw StorageError(.invalidArgument, "read snapshotter config", path: path, reason: "the file is not UTF-8 text")
            }
            return text
        } catch let error as Errno {
            throw StorageError("read snapshotter config", path: path, errno: error)
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError(.io, "read snapshotter config", path: path, reason: "\(error)")
        }
    }
}
