import GraphDriver

/// What a snapshot is, with containerd's numbers (`containerd.services.snapshots.v1.Kind`).
public enum SnapshotKind: Int64, Sendable, Hashable, CustomStringConvertible {
    /// A read-only view of a committed snapshot.
    case view = 1
    /// A writable snapshot, until it is committed.
    case active = 2
    /// A read-only snapshot other snapshots can sit on.
    case committed = 3

    /// The name containerd's filters use (`kind==active`).
    public var description: String {
        switch self {
        case .view: "view"
        case .active: "active"
        case .committed: "committed"
        }
    }
}

/// One snapshot as the metadata store keeps it.
public struct SnapshotRecord: Sendable, Hashable {
    /// The row's number (also the driver layer's name: `layerID`).
    public var id: Int64
    /// containerd's key (active or view) or name (committed). Any string; never a path.
    public var key: String
    /// What it is.
    public var kind: SnapshotKind
    /// The row of the committed snapshot it sits on.
    public var parentID: Int64?
    /// The key of that parent.
    public var parentKey: String?
    /// The driver layer holding its files.
    public var layer: LayerID
    /// Nanoseconds since the epoch.
    public var created: Int64
    /// Nanoseconds since the epoch.
    public var updated: Int64
    /// containerd's labels.
    public var labels: [String: String]
}

/// Snapshot metadata in SQLite: keys, kinds, parents, labels, timestamps and each snapshot's
/// driver layer.
///
/// Every change is one transaction. A row is written `creating` before its layer is made and
/// `removing` before its layer goes, so that after a crash `pending()` names exactly the
/// snapshots whose layer may be half made or half gone.
final class SnapshotStore {
    let database: SQLiteDatabase

    enum State: Int64 { case ready = 0, creating = 1, removing = 2 }

    init(path: String, sync: MetadataSync) throws(StorageError) {
        database = try SQLiteDatabase(path: path, sync: sync)
        try database.execute("""
            CREATE TABLE IF NOT EXISTS snapshots(
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                key TEXT NOT NULL UNIQUE,
                kind INTEGER NOT NULL,
                parent INTEGER REFERENCES snapshots(id),
                layer TEXT UNIQUE,
                created INTEGER NOT NULL,
                updated INTEGER NOT NULL,
                state INTEGER NOT NULL);
            CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent);
            CREATE TABLE IF NOT EXISTS labels(
                snapshot INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY(snapshot, name))
            """)
    }

    /// The driver layer of row `id`.
    static func layerID(_ id: Int64) -> LayerID {
        // "snap-" and a number always match the layer ID pattern.
        try! LayerID("snap-\(id)")
    }

    private static let columns = "s.id, s.key, s.kind, s.parent, p.key, s.layer, s.created, s.updated"

    private func records(where condition: String, _ arguments: [SQLValue]) throws(StorageError) -> [SnapshotRecord] {
        let rows = try database.query(
            "SELECT \(Self.columns) FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent WHERE \(condition) ORDER BY s.id",
            arguments)
        var result: [SnapshotRecord] = []
        for row in rows {
            guard let id = row[0].integer, let key = row[1].text, let kind = row[2].integer.flatMap(SnapshotKind.init),
                  let created = row[6].integer, let updated = row[7].integer
            else {
                throw StorageError(.corrupt, "read snapshot metadata", path: database.path, reason: "a row of the snapshots table is malformed")
            }
            result.append(SnapshotRecord(id: id, key: key, kind: kind, parentID: row[3].integer, parentKey: row[4].text,
                                         layer: Self.layerID(id), created: created, updated: updated, labels: [:]))
        }
        if !result.isEmpty {
            let labelRows: [[SQLValue]]
            if result.count == 1 {
                labelRows = try database.query("SELECT snapshot, name, value FROM labels WHERE snapshot = ?", [.integer(result[0].id)])
            } else {
                labelRows = try database.query("SELECT snapshot, name, value FROM labels")
            }
            var index: [Int64: Int] = [:]
            for (i, record) in result.enumerated() { index[record.id] = i }
            for row in labelRows {
                if let id = row[0].integer, let i = index[id], let name = row[1].text, let value = row[2].text {
                    result[i].labels[name] = value
                }
            }
        }
        return result
    }

    /// The ready snapshot called `key`, if there is one.
    func record(_ key: String) throws(StorageError) -> SnapshotRecord? {
        try records(where: "s.key = ? AND s.state = 0", [.text(key)]).first
    }

    /// Every ready snapshot, oldest first.
    func all() throws(StorageError) -> [SnapshotRecord] {
        try records(where: "s.state = 0", [])
    }

    /// Snapshots a crash left `creating` or `removing`, with their state.
    func pending() throws(StorageError) -> [(SnapshotRecord, State)] {
        let rows = try database.query("SELECT id, state FROM snapshots WHERE state != 0 ORDER BY id DESC")
        var result: [(SnapshotRecord, State)] = []
        for row in rows {
            guard let id = row[0].integer, let state = row[1].integer.flatMap(State.init) else { continue }
            if let record = try records(where: "s.id = ?", [.integer(id)]).first { result.append((record, state)) }
        }
        return result
    }

    /// How many snapshots (in any state) sit on row `id`.
    func childCount(_ id: Int64) throws(StorageError) -> Int {
        Int(try database.query("SELECT count(*) FROM snapshots WHERE parent = ?", [.integer(id)]).first?.first?.integer ?? 0)
    }

    /// Writes a `creating` row for a new snapshot and returns it. Fails with `alreadyExists`
    /// when the key is taken.
    func insertCreating(key: String, kind: SnapshotKind, parentID: Int64?, labels: [String: String],
                        now: Int64) throws(StorageError) -> SnapshotRecord {
        try database.transaction { () throws(StorageError) -> SnapshotRecord in
            if try !database.query("SELECT 1 FROM snapshots WHERE key = ?", [.text(key)]).isEmpty {
                throw StorageError(.alreadyExists, "create snapshot", reason: "snapshot \(quoted(key)) already exists")
            }
            try database.query("INSERT INTO snapshots(key, kind, parent, created, updated, state) VALUES(?, ?, ?, ?, ?, 1)",
                               [.text(key), .integer(kind.rawValue), parentID.map(SQLValue.integer) ?? .null, .integer(now), .integer(now)])
            let id = database.lastInsertRowID
            try database.query("UPDATE snapshots SET layer = ? WHERE id = ?", [.text(Self.layerID(id).rawValue), .integer(id)])
            try writeLabels(id, labels)
            guard let record = try records(where: "s.id = ?", [.integer(id)]).first else {
                throw StorageError(.io, "create snapshot", path: database.path, reason: "the new row cannot be read back")
            }
            return record
        }
    }

    private func writeLabels(_ id: Int64, _ labels: [String: String]) throws(StorageError) {
        for (name, value) in labels {
            try database.query("INSERT OR REPLACE INTO labels(snapshot, name, value) VALUES(?, ?, ?)",
                               [.integer(id), .text(name), .text(value)])
        }
    }

    /// Sets row `id`'s state.
    func setState(_ id: Int64, _ state: State) throws(StorageError) {
        try database.query("UPDATE snapshots SET state = ? WHERE id = ?", [.integer(state.rawValue), .integer(id)])
    }

    /// Deletes row `id` and its labels.
    func delete(_ id: Int64) throws(StorageError) {
        try database.transaction { () throws(StorageError) in
            try database.query("DELETE FROM labels WHERE snapshot = ?", [.integer(id)])
            try database.query("DELETE FROM snapshots WHERE id = ?", [.integer(id)])
        }
    }

    /// Turns active row `id` into the committed snapshot `name` with `labels` (the active
    /// snapshot's labels do not carry over, as in containerd's own store), created now, in one
    /// transaction.
    func commit(_ id: Int64, name: String, labels: [String: String], now: Int64) throws(StorageError) {
        try database.transaction { () throws(StorageError) in
            if try !database.query("SELECT 1 FROM snapshots WHERE key = ?", [.text(name)]).isEmpty {
                throw StorageError(.alreadyExists, "commit snapshot", reason: "snapshot \(quoted(name)) already exists")
            }
            try database.query("UPDATE snapshots SET key = ?, kind = 3, created = ?, updated = ? WHERE id = ?",
                               [.text(name), .integer(now), .integer(now), .integer(id)])
            try database.query("DELETE FROM labels WHERE snapshot = ?", [.integer(id)])
            try writeLabels(id, labels)
        }
    }

    /// Replaces row `id`'s labels (all of them, or only `fields` when given) and its update time.
    func updateLabels(_ id: Int64, labels: [String: String], fields: [String]?, now: Int64) throws(StorageError) {
        try database.transaction { () throws(StorageError) in
            if let fields {
                for name in fields {
                    if let value = labels[name] {
                        try database.query("INSERT OR REPLACE INTO labels(snapshot, name, value) VALUES(?, ?, ?)",
                                           [.integer(id), .text(name), .text(value)])
                    } else {
                        try database.query("DELETE FROM labels WHERE snapshot = ? AND name = ?", [.integer(id), .text(name)])
                    }
                }
            } else {
                try database.query("DELETE FROM labels WHERE snapshot = ?", [.integer(id)])
                try writeLabels(id, labels)
            }
            try database.query("UPDATE snapshots SET updated = ? WHERE id = ?", [.integer(now), .integer(id)])
        }
    }
}

/// A key as an error message shows it: quoted, control characters escaped, cut at 200 bytes.
func quoted(_ key: String) -> String {
    let shown = key.utf8.count > 200 ? String(decoding: key.utf8.prefix(200), as: UTF8.self) + "…" : key
    return "\"" + shown.unicodeScalars.map { $0.value < 0x20 || $0 == "\"" ? $0.escaped(asASCII: true) : String($0) }.joined() + "\""
}
