import GRPCCore
import GraphDriver
import Logging
import SwiftProtobuf

/// containerd's `containerd.services.snapshots.v1.Snapshots` gRPC service over a `Snapshotter`.
///
/// Failures become the status codes containerd's `errdefs` reads back: a missing snapshot
/// `NOT_FOUND`, a taken key `ALREADY_EXISTS`, a bad argument (an uncommitted parent, a hostile
/// key, a malformed label or filter) `INVALID_ARGUMENT`, a snapshot in the wrong state (committing
/// a view, removing a parent) or a feature the host lacks `FAILED_PRECONDITION`.
public struct SnapshotsService: Containerd_Services_Snapshots_V1_Snapshots.SimpleServiceProtocol {
    /// The snapshots it serves.
    public let snapshotter: Snapshotter
    let logger: Logger

    /// A service over `snapshotter`.
    public init(snapshotter: Snapshotter, logger: Logger = Logger(label: "strata.snapshotter")) {
        self.snapshotter = snapshotter
        self.logger = logger
    }

    /// The status code containerd expects for `error`.
    public static func statusCode(for error: StorageError) -> RPCError.Code {
        switch error.code {
        case .notFound: .notFound
        case .alreadyExists: .alreadyExists
        case .invalidArgument, .unsafePath, .malformedArchive: .invalidArgument
        case .busy, .unsupported: .failedPrecondition
        case .permissionDenied: .permissionDenied
        case .quotaExceeded: .resourceExhausted
        case .corrupt: .dataLoss
        default: .internalError
        }
    }

    /// Runs `body`, mapping its error to the status containerd expects (and logging it).
    private func call<T: Sendable>(_ name: String, _ body: () throws(StorageError) -> T) throws -> T {
        do throws(StorageError) {
            return try body()
        } catch {
            logger.info("request failed", metadata: ["rpc": "\(name)", "error": "\(error)"])
            throw RPCError(code: Self.statusCode(for: error), message: error.description)
        }
    }

    static func mounts(_ specs: [MountSpec]) -> [Containerd_Types_Mount] {
        specs.map { spec in
            var mount = Containerd_Types_Mount()
            mount.type = spec.type
            mount.source = spec.source
            mount.options = spec.options
            return mount
        }
    }

    static func timestamp(_ nanoseconds: Int64) -> Google_Protobuf_Timestamp {
        var ts = Google_Protobuf_Timestamp()
        ts.seconds = nanoseconds / 1_000_000_000
        ts.nanos = Int32(nanoseconds % 1_000_000_000)
        return ts
    }

    static func info(_ record: SnapshotRecord) -> Containerd_Services_Snapshots_V1_Info {
        var info = Containerd_Services_Snapshots_V1_Info()
        info.name = record.key
        info.parent = record.parentKey ?? ""
        info.kind = switch record.kind {
        case .view: .view
        case .active: .active
        case .committed: .committed
        }
        info.createdAt = timestamp(record.created)
        info.updatedAt = timestamp(record.updated)
        info.labels = record.labels
        return info
    }

    public func prepare(request: Containerd_Services_Snapshots_V1_PrepareSnapshotRequest,
                        context: ServerContext) async throws -> Containerd_Services_Snapshots_V1_PrepareSnapshotResponse {
        try respond("Prepare") { [snapshotter] () throws(StorageError) in
            try snapshotter.prepare(key: request.key, parent: request.parent, labels: request.labels)
        }
    }

    public func view(request: Containerd_Services_Snapshots_V1_ViewSnapshotRequest,
                     context: ServerContext) async throws -> Containerd_Services_Snapshots_V1_ViewSnapshotResponse {
        try respond("View") { [snapshotter] () throws(StorageError) in
            try snapshotter.view(key: request.key, parent: request.parent, labels: request.labels)
        }
    }

    public func mounts(request: Containerd_Services_Snapshots_V1_MountsRequest,
                       context: ServerContext) async throws -> Containerd_Services_Snapshots_V1_MountsResponse {
        try respond("Mounts") { [snapshotter] () throws(StorageError) in try snapshotter.mounts(key: request.key) }
    }

    /// A response carrying the mounts `body` returns (Prepare, View, Mounts).
    private func respond<Response: MountsResponse>(
        _ name: String, _ body: () throws(StorageError) -> [MountSpec]
    ) throws -> Response {
        var response = Response()
        response.mounts = Self.mounts(try call(name, body))
        return response
    }

    public func commit(request: Containerd_Services_Snapshots_V1_CommitSnapshotRequest,
                       context: ServerContext) async throws -> Google_Protobuf_Empty {
        try call("Commit") { [snapshotter] () throws(StorageError) in
            try snapshotter.commit(name: request.name, key: request.key, labels: request.labels)
        }
        return Google_Protobuf_Empty()
    }

    public func remove(request: Containerd_Services_Snapshots_V1_RemoveSnapshotRequest,
                       context: ServerContext) async throws -> Google_Protobuf_Empty {
        try call("Remove") { [snapshotter] () throws(StorageError) in try snapshotter.remove(key: request.key) }
        return Google_Protobuf_Empty()
    }

    public func stat(request: Containerd_Services_Snapshots_V1_StatSnapshotRequest,
                     context: ServerContext) async throws -> Containerd_Services_Snapshots_V1_StatSnapshotResponse {
        let record = try call("Stat") { [snapshotter] () throws(StorageError) in try snapshotter.stat(key: request.key) }
        var response = Containerd_Services_Snapshots_V1_StatSnapshotResponse()
        response.info = Self.info(record)
        return response
    }

    public func update(request: Containerd_Services_Snapshots_V1_UpdateSnapshotRequest,
                       context: ServerContext) async throws -> Containerd_Services_Snapshots_V1_UpdateSnapshotResponse {
        let record = try call("Update") { [snapshotter] () throws(StorageError) in
            try snapshotter.update(key: request.info.name, labels: request.info.labels, fields: request.updateMask.paths)
        }
        var response = Containerd_Services_Snapshots_V1_UpdateSnapshotResponse()
        response.info = Self.info(record)
        return response
    }

    public func list(request: Containerd_Services_Snapshots_V1_ListSnapshotsRequest,
                     response: RPCWriter<Containerd_Services_Snapshots_V1_ListSnapshotsResponse>,
                     context: ServerContext) async throws {
        let records = try call("List") { [snapshotter] () throws(StorageError) in
            try snapshotter.list(SnapshotFilter(parsing: request.filters))
        }
        // In batches, as containerd's own service streams them.
        var start = 0
        while start < records.count {
            var message = Containerd_Services_Snapshots_V1_ListSnapshotsResponse()
            message.info = records[start..<min(start + 100, records.count)].map(Self.info)
            try await response.write(message)
            start += 100
        }
    }

    public func usage(request: Containerd_Services_Snapshots_V1_UsageRequest,
                      context: ServerContext) async throws -> Containerd_Services_Snapshots_V1_UsageResponse {
        let usage = try call("Usage") { [snapshotter] () throws(StorageError) in try snapshotter.usage(key: request.key) }
        var response = Containerd_Services_Snapshots_V1_UsageResponse()
        response.size = usage.bytes
        response.inodes = usage.inodes
        return response
    }

    public func cleanup(request: Containerd_Services_Snapshots_V1_CleanupRequest,
                        context: ServerContext) async throws -> Google_Protobuf_Empty {
        try call("Cleanup") { [snapshotter] () throws(StorageError) in try snapshotter.cleanup() }
        return Google_Protobuf_Empty()
    }
}

/// The responses that carry a snapshot's mounts.
protocol MountsResponse {
    init()
    var mounts: [Containerd_Types_Mount] { get set }
}

extension Containerd_Services_Snapshots_V1_PrepareSnapshotResponse: MountsResponse {}
extension Containerd_Services_Snapshots_V1_ViewSnapshotResponse: MountsResponse {}
extension Containerd_Services_Snapshots_V1_MountsResponse: MountsResponse {}
