import CSQLite
import GraphDriver

/// A value bound to, or read from, an SQL statement.
enum SQLValue: Sendable, Hashable {
    case integer(Int64)
    case text(String)
    case null
}

/// One SQLite connection (the system library), used from one thread at a time.
///
/// Opened in WAL mode with `synchronous` set by `MetadataSync`: a transaction that returned
/// survives the process (and, with `full`, the machine), and a process killed in the middle of
/// one leaves the database as it was before it began.
final class SQLiteDatabase {
    private var handle: OpaquePointer?
    let path: String

    /// Opens (creating when missing) the database at `path`.
    init(path: String, sync: MetadataSync) throws(StorageError) {
        self.path = path
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            throw StorageError(.io, "open snapshot metadata", path: path, reason: message)
        }
        handle = db
        sqlite3_busy_timeout(db, 10_000)
        // One snapshotter owns the database: it holds the lock from its first access until it
        // stops (a second snapshotter on the same root fails to open it), and, set before WAL
        // mode, this keeps the WAL index in the process's memory: no shared-memory file and no
        // lock calls around every statement (16 fcntl a request before).
        try execute("PRAGMA locking_mode=EXCLUSIVE")
        let mode = try query("PRAGMA journal_mode=WAL").first?.first
        guard mode == .text("wal") else {
            throw StorageError(.unsupported, "open snapshot metadata", path: path, reason: "the database cannot use WAL mode here")
        }
        try execute(sync == .full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL")
        try execute("PRAGMA foreign_keys=ON")
    }

    deinit { sqlite3_close_v2(handle) }

    /// The error of the last call, as a `StorageError`.
    private func failure(_ operation: String, _ rc: Int32) -> StorageError {
        let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "no database"
        let code: StorageError.Code = (rc & 0xff) == SQLITE_CONSTRAINT ? .alreadyExists
            : (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB ? .corrupt : .io
        return StorageError(code, operation, path: path, reason: message)
    }

    /// Runs statements that return no rows (several may be given, separated by `;`).
    func execute(_ sql: String) throws(StorageError) {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw failure("run '\(sql.prefix(60))'", rc) }
    }

    /// Runs one statement with `arguments` bound to its `?` parameters and returns its rows.
    @discardableResult
    func query(_ sql: String, _ arguments: [SQLValue] = []) throws(StorageError) -> [[SQLValue]] {
        var statement: OpaquePointer?
        var rc = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw failure("prepare '\(sql.prefix(60))'", rc) }
        defer { sqlite3_finalize(statement) }
        // SQLITE_TRANSIENT: SQLite copies the bytes before the call returns.
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for (index, argument) in arguments.enumerated() {
            let position = Int32(index + 1)
            switch argument {
            case .integer(let value): rc = sqlite3_bind_int64(statement, position, value)
            case .text(let value): rc = sqlite3_bind_text(statement, position, value, -1, transient)
            case .null: rc = sqlite3_bind_null(statement, position)
            }
            guard rc == SQLITE_OK else { throw failure("bind '\(sql.prefix(60))'", rc) }
        }
        var rows: [[SQLValue]] = []
        while true {
            rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw failure("run '\(sql.prefix(60))'", rc) }
            var row: [SQLValue] = []
            for column in 0..<sqlite3_column_count(statement) {
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: row.append(.integer(sqlite3_column_int64(statement, column)))
                case SQLITE_NULL: row.append(.null)
                default:
                    let text = sqlite3_column_text(statement, column).map { String(cString: $0) } ?? ""
                    row.append(.text(text))
                }
            }
            rows.append(row)
        }
        return rows
    }

    /// The row ID of the last insert.
    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction: committed when it returns, rolled back
    /// when it throws.
    func transaction<T>(_ body: () throws(StorageError) -> T) throws(StorageError) -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }
}

extension SQLValue {
    /// The integer, or nil for another type.
    var integer: Int64? { if case .integer(let v) = self { v } else { nil } }
    /// The text, or nil for another type.
    var text: String? { if case .text(let v) = self { v } else { nil } }
}
