import SystemPackage

/// The one error type above the syscall layer: what failed, on which path, and why.
///
/// `description` is the line a person sees: `<operation>: <path>: <reason>`.
public struct StorageError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What kind of failure this is, for code that reacts to it.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case notFound, alreadyExists, invalidArgument, unsupported, busy, malformedArchive,
                 unsafePath, permissionDenied, io, quotaExceeded, corrupt
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        public static let notFound = Code(.notFound)
        public static let alreadyExists = Code(.alreadyExists)
        public static let invalidArgument = Code(.invalidArgument)
        public static let unsupported = Code(.unsupported)
        public static let busy = Code(.busy)
        public static let malformedArchive = Code(.malformedArchive)
        public static let unsafePath = Code(.unsafePath)
        public static let permissionDenied = Code(.permissionDenied)
        public static let io = Code(.io)
        public static let quotaExceeded = Code(.quotaExceeded)
        public static let corrupt = Code(.corrupt)

        public var description: String { "\(value)" }
    }

    public var code: Code
    /// What was being done ("apply diff", "mount layer abc").
    public var operation: String
    /// The path it was done to, when there is one.
    public var path: String?
    /// Why it failed, in words a person can act on.
    public var reason: String
    /// The system error underneath, when there is one.
    public var errno: Errno?

    public init(_ code: Code, _ operation: String, path: String? = nil, reason: String, errno: Errno? = nil) {
        self.code = code
        self.operation = operation
        self.path = path
        self.reason = reason
        self.errno = errno
    }

    /// Wraps a system error, choosing the code from the errno.
    public init(_ operation: String, path: String? = nil, errno: Errno) {
        let code: Code = switch errno {
        case .noSuchFileOrDirectory: .notFound
        case .fileExists: .alreadyExists
        case .invalidArgument: .invalidArgument
        case .permissionDenied, .notPermitted: .permissionDenied
        case .resourceBusy: .busy
        case .noSpace, .diskQuotaExceeded: .quotaExceeded
        case .notSupported: .unsupported
        default: .io
        }
        self.init(code, operation, path: path, reason: errno.description, errno: errno)
    }

    public var description: String {
        var parts = [operation]
        if let path { parts.append(path) }
        parts.append(reason)
        return parts.joined(separator: ": ")
    }
}

/// Runs `body` and turns the `Errno` it throws into a ``StorageError`` for `operation` on
/// `path`: the one bridge from the syscall layer's errors to the driver's.
///
/// `operation` and `path` are only evaluated when `body` fails, so naming the path costs nothing
/// on the way that succeeds. The code comes from the errno, as ``StorageError/init(_:path:errno:)``
/// chooses it.
///
/// ```swift
/// let fd = try attempt("open layer archive", archive) { () throws(Errno) in
///     try FileDescriptor.currentWorkingDirectory.open(at: archive, .readOnly)
/// }
/// ```
///
/// A failure that needs another code or reason (or a cleanup before the throw) keeps its own
/// `do`/`catch`.
@inlinable @inline(__always)
public func attempt<T, Path: CustomStringConvertible>(
    _ operation: @autoclosure () -> String, _ path: @autoclosure () -> Path?,
    _ body: () throws(Errno) -> T
) throws(StorageError) -> T {
    do throws(Errno) {
        return try body()
    } catch {
        throw StorageError(operation(), path: path()?.description, errno: error)
    }
}
