import GraphDriver

/// The part of TOML that `storage.conf` uses: `[tables]`, `key = value` with strings (basic and
/// literal), booleans, integers and arrays of strings (over several lines too), and comments.
/// Every value remembers its line, so an error can name the file, the line and the key.
struct ConfigFile {
    enum Value: Equatable {
        case string(String)
        case bool(Bool)
        case integer(Int64)
        case strings([String])
    }

    struct Entry {
        var table: String
        var key: String
        var value: Value
        var line: Int
    }

    let path: String
    private(set) var entries: [Entry] = []

    init(path: String, text: String) throws(StorageError) {
        self.path = path
        var table = ""
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var index = 0
        while index < lines.count {
            let lineNumber = index + 1
            var line = Self.stripComment(lines[index]).trimmed
            index += 1
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), !line.hasPrefix("[[") else {
                    throw error(lineNumber, nil, "'\(line)' is not a [table] header")
                }
                table = String(line.dropFirst().dropLast()).trimmed
                continue
            }
            guard let eq = line.firstIndex(of: "=") else {
                throw error(lineNumber, nil, "'\(line)' is not key = value")
            }
            let key = String(line[..<eq]).trimmed.trimmingQuotes
            var rest = String(line[line.index(after: eq)...]).trimmed
            // An array may go on over several lines until its closing bracket.
            if rest.hasPrefix("[") {
                while !Self.arrayIsClosed(rest) && index < lines.count {
                    rest += " " + Self.stripComment(lines[index]).trimmed
                    index += 1
                }
            }
            line = rest
            let value = try parseValue(line, line: lineNumber, key: key)
            entries.append(Entry(table: table, key: key, value: value, line: lineNumber))
        }
    }

    func error(_ line: Int, _ key: String?, _ reason: String) -> StorageError {
        let location = key.map { "\(path):\(line): \($0)" } ?? "\(path):\(line)"
        return StorageError(.invalidArgument, "read configuration", path: location, reason: reason)
    }

    private func parseValue(_ text: String, line: Int, key: String) throws(StorageError) -> Value {
        if text == "true" { return .bool(true) }
        if text == "false" { return .bool(false) }
        if let n = Int64(text.replacingUnderscores) { return .integer(n) }
        if text.hasPrefix("\"") || text.hasPrefix("'") {
            guard let s = Self.parseString(text[...]), s.rest.trimmed.isEmpty else {
                throw error(line, key, "\(text) is not a well-formed string")
            }
            return .string(s.value)
        }
        if text.hasPrefix("[") {
            var items: [String] = []
            var rest = text.dropFirst()
            while true {
                rest = rest.drop(while: { $0 == " " || $0 == "\t" || $0 == "," })
                if rest.hasPrefix("]") {
                    guard rest.dropFirst().trimmed.isEmpty else { throw error(line, key, "text after the array") }
                    return .strings(items)
                }
                guard let s = Self.parseString(rest) else {
                    throw error(line, key, "arrays here hold strings only")
                }
                items.append(s.value)
                rest = s.rest
            }
        }
        throw error(line, key, "\(text) is not a string, boolean, integer or array of strings")
    }

    private static func parseString(_ text: Substring) -> (value: String, rest: Substring)? {
        guard let quote = text.first, quote == "\"" || quote == "'" else { return nil }
        var value = ""
        var i = text.index(after: text.startIndex)
        while i < text.endIndex {
            let c = text[i]
            if c == quote { return (value, text[text.index(after: i)...]) }
            if c == "\\" && quote == "\"" {
                i = text.index(after: i)
                guard i < text.endIndex else { return nil }
                switch text[i] {
                case "n": value.append("\n")
                case "t": value.append("\t")
                case "\\": value.append("\\")
                case "\"": value.append("\"")
                default: return nil
                }
            } else {
                value.append(c)
            }
            i = text.index(after: i)
        }
        return nil
    }

    private static func stripComment(_ line: String) -> String {
        var inString: Character?
        for (offset, c) in line.enumerated() {
            if let q = inString {
                if c == q { inString = nil }
            } else if c == "\"" || c == "'" {
                inString = c
            } else if c == "#" {
                return String(line.prefix(offset))
            }
        }
        return line
    }

    private static func arrayIsClosed(_ text: String) -> Bool {
        var inString: Character?
        var depth = 0
        for c in text {
            if let q = inString { if c == q { inString = nil }; continue }
            if c == "\"" || c == "'" { inString = c } else if c == "[" { depth += 1 } else if c == "]" { depth -= 1 }
        }
        return depth <= 0
    }
}

extension StringProtocol {
    var trimmed: String {
        String(drop(while: { $0 == " " || $0 == "\t" || $0 == "\r" }).reversed()
            .drop(while: { $0 == " " || $0 == "\t" || $0 == "\r" }).reversed())
    }

    var trimmingQuotes: String {
        let t = trimmed
        if t.count >= 2, let f = t.first, f == "\"" || f == "'", t.last == f { return String(t.dropFirst().dropLast()) }
        return t
    }

    var replacingUnderscores: String { String(filter { $0 != "_" }) }
}
