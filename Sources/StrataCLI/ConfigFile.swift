import GraphDriver
import TOMLKit

/// One `storage.conf`, parsed by a full TOML 1.0 parser (TOMLKit, over toml++): every valid TOML
/// file reads, and every error names the file, the line and the key (`file:line: key: reason`).
///
/// TOMLKit places syntax errors; the line of a value is found by ``TOMLKeyLines`` from the text.
struct ConfigFile {
    /// A TOML value, in Strata's own types (TOMLKit's are classes over C++ objects).
    indirect enum Value: Equatable {
        case string(String)
        case integer(Int)
        case float(Double)
        case bool(Bool)
        /// A date, a time or a date-time, as TOMLKit prints it.
        case dateTime(String)
        case array([Value])
        case table([String: Value])

        /// What a person calls this kind of value, for error messages.
        var kind: String {
            switch self {
            case .string: "a string"
            case .integer: "an integer"
            case .float: "a float"
            case .bool: "a boolean"
            case .dateTime: "a date or time"
            case .array: "an array"
            case .table: "a table"
            }
        }
    }

    /// The file's path, as the user named it.
    let path: String
    /// The document's top-level table.
    let root: [String: Value]
    private let keyLines: TOMLKeyLines

    /// Parses `bytes`, the content of the file at `path`.
    init(path: String, bytes: [UInt8]) throws(StorageError) {
        self.path = path
        keyLines = TOMLKeyLines(scanning: bytes)
        // TOMLKit takes a C string: a NUL byte would end the document early without a word.
        if let nul = bytes.firstIndex(of: 0) {
            throw Self.error(path, Self.lineNumber(of: nul, in: bytes), keyLines, "the line holds a NUL byte", bytes: bytes)
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw Self.error(path, Self.firstInvalidUTF8Line(in: bytes), keyLines, "the line is not valid UTF-8", bytes: bytes)
        }
        if let line = keyLines.nulEscapeLine {
            throw Self.error(path, line, keyLines, "a string holds \\u0000, which no path or option can hold", bytes: bytes)
        }
        if let (line, reason) = keyLines.refusal {
            throw Self.error(path, line, keyLines, reason, bytes: bytes)
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            // toml++'s sentence ("Error while parsing …"), in the lower case of Strata's reasons.
            let reason = error.description.prefix(1).lowercased() + error.description.dropFirst()
            throw Self.error(path, error.source.begin.line, keyLines, "\(reason) (column \(error.source.begin.column))",
                             bytes: bytes)
        } catch {
            throw StorageError(.invalidArgument, "read configuration", path: path, reason: "\(error)")
        }
        root = Self.convert(table)
    }

    /// The line where `key` is written, if the scan found it.
    func line(of key: [String]) -> Int? { keyLines.lines[key] }

    /// An error about `key`: `file:line: key: reason` (the key as its last part, as written on the
    /// line named).
    func error(_ key: [String], _ reason: String) -> StorageError {
        let name = key.last ?? ""
        let location = line(of: key).map { "\(path):\($0): \(name)" } ?? "\(path): \(key.joined(separator: "."))"
        return StorageError(.invalidArgument, "read configuration", path: location, reason: reason)
    }

    /// Where `key` is, for warnings: `file:line`.
    func location(of key: [String]) -> String {
        line(of: key).map { "\(path):\($0)" } ?? path
    }

    /// An error at `line`, named by the key written on it; else by what the line starts with
    /// (`graph root = …`, a key TOML refuses); else by the key written last before it.
    private static func error(_ path: String, _ line: Int, _ keys: TOMLKeyLines, _ reason: String,
                              bytes: [UInt8]) -> StorageError {
        var location = "\(path):\(line)"
        if let key = keys.key(on: line)?.last ?? leadingKey(ofLine: line, in: bytes) ?? keys.key(atOrBefore: line)?.last {
            location += ": \(key)"
        }
        return StorageError(.invalidArgument, "read configuration", path: location, reason: reason)
    }

    /// The text before `=` (or the header's name) on `line`, when the line has either.
    private static func leadingKey(ofLine line: Int, in bytes: [UInt8]) -> String? {
        let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        guard line >= 1, line <= lines.count else { return nil }
        var text = Substring(String(decoding: lines[line - 1], as: UTF8.self))
        text = text.prefix { $0 != "#" }
        guard text.contains("=") || text.drop(while: { $0 == " " || $0 == "\t" }).hasPrefix("[") else { return nil }
        text = text.prefix { $0 != "=" }
        text = text.drop { $0 == " " || $0 == "\t" || $0 == "[" }
        while let last = text.last, last == " " || last == "\t" || last == "\r" || last == "]" { text = text.dropLast() }
        return text.isEmpty || text.count > 80 ? nil : String(text)
    }

    private static func lineNumber(of offset: Int, in bytes: [UInt8]) -> Int {
        1 + bytes[..<offset].reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
    }

    /// The first line that is not valid UTF-8 (a newline byte is never part of a longer
    /// UTF-8 sequence, so lines can be judged one by one).
    private static func firstInvalidUTF8Line(in bytes: [UInt8]) -> Int {
        for (number, line) in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated()
        where String(validating: line, as: UTF8.self) == nil {
            return number + 1
        }
        return 1
    }

    private static func convert(_ table: TOMLTable) -> [String: Value] {
        var result: [String: Value] = [:]
        for (key, value) in table { result[key] = convert(value) }
        return result
    }

    private static func convert(_ value: TOMLValueConvertible) -> Value {
        switch value.type {
        case .string: .string(value.string ?? "")
        case .int: .integer(value.int ?? 0)
        case .double: .float(value.double ?? 0)
        case .bool: .bool(value.bool ?? false)
        case .date, .time, .dateTime: .dateTime(value.debugDescription)
        case .array: .array(value.array.map { $0.map(convert) } ?? [])
        case .table: .table(value.table.map(convert) ?? [:])
        }
    }
}
