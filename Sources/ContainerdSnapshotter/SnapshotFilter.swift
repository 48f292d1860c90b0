import GraphDriver

/// containerd's filter language for `List`, for the fields snapshots have: `name`, `parent`,
/// `kind` and `labels.<key>`.
///
/// One filter is selectors joined by `,`, all of which must match; a request's filters are
/// alternatives (any may match), as containerd's `filters.ParseAll` reads them. A selector is a
/// field path, alone (the field is present and not empty) or followed by `==`, `!=` or `~=`
/// (a regular expression) and a value. Path parts and values may be quoted with `"` (escapes
/// as in Go strings: `\"`, `\\`, `\n`, `\t`), `'` or `/`. Examples:
/// `kind==active,labels."containerd.io/gc.root"==check-walk`, `parent!=""`, `labels.l`.
public struct SnapshotFilter: Sendable {
    enum Operator: Sendable { case present, equal, notEqual, matches }

    struct Selector: Sendable {
        var path: [String]
        var op: Operator
        var value: String
    }

    /// Alternatives, each a list of selectors that must all match.
    let alternatives: [[Selector]]

    /// Parses a request's filters; no filters (or only empty ones) match everything.
    public init(parsing filters: [String]) throws(StorageError) {
        var alternatives: [[Selector]] = []
        for text in filters where !text.allSatisfy(\.isWhitespace) {
            var parser = Parser(Array(text.unicodeScalars), original: text)
            alternatives.append(try parser.filter())
        }
        self.alternatives = alternatives
    }

    /// Whether `info` matches.
    public func matches(_ info: SnapshotRecord) -> Bool {
        if alternatives.isEmpty { return true }
        return alternatives.contains { selectors in selectors.allSatisfy { Self.matches($0, info) } }
    }

    private static func field(_ path: [String], _ info: SnapshotRecord) -> String? {
        switch path.first {
        case "name": path.count == 1 ? info.key : nil
        case "parent": path.count == 1 ? (info.parentKey ?? "") : nil
        case "kind": path.count == 1 ? info.kind.description : nil
        case "labels": path.count >= 2 ? info.labels[path.dropFirst().joined(separator: ".")] : nil
        default: nil
        }
    }

    private static func matches(_ selector: Selector, _ info: SnapshotRecord) -> Bool {
        let value = field(selector.path, info)
        switch selector.op {
        case .present: return !(value ?? "").isEmpty
        case .equal: return value.map { $0 == selector.value } ?? false
        case .notEqual: return value.map { $0 != selector.value } ?? true
        case .matches:
            guard let value, let regex = try? Regex(selector.value) else { return false }
            return value.contains(regex)
        }
    }

    /// A recursive-descent reader of one filter string.
    struct Parser {
        let text: [Unicode.Scalar]
        let original: String
        var position = 0

        init(_ text: [Unicode.Scalar], original: String) {
            self.text = text
            self.original = original
        }

        func error(_ what: String) -> StorageError {
            StorageError(.invalidArgument, "parse filter", reason: "\(quoted(original)): \(what) at offset \(position)")
        }

        var current: Unicode.Scalar? { position < text.count ? text[position] : nil }

        mutating func skipSpaces() {
            while let c = current, c.properties.isWhitespace { position += 1 }
        }

        mutating func filter() throws(StorageError) -> [Selector] {
            var selectors: [Selector] = []
            while true {
                selectors.append(try selector())
                skipSpaces()
                guard let c = current else { return selectors }
                guard c == "," else { throw error("expected ',' or the end") }
                position += 1
            }
        }

        mutating func selector() throws(StorageError) -> Selector {
            var path = [try pathPart()]
            while current == "." {
                position += 1
                path.append(try pathPart())
            }
            skipSpaces()
            let op: Operator
            switch (current, position + 1 < text.count ? text[position + 1] : nil) {
            case ("=", "="): op = .equal
            case ("!", "="): op = .notEqual
            case ("~", "="): op = .matches
            case (nil, _), (",", _): return Selector(path: path, op: .present, value: "")
            default: throw error("expected ==, != or ~=")
            }
            position += 2
            skipSpaces()
            return Selector(path: path, op: op, value: try value())
        }

        static func isFieldCharacter(_ c: Unicode.Scalar) -> Bool {
            c.properties.isAlphabetic || c.properties.numericType != nil || c == "_"
        }

        mutating func pathPart() throws(StorageError) -> String {
            skipSpaces()
            if let c = current, c == "\"" || c == "'" || c == "/" { return try quotedString() }
            let start = position
            while let c = current, Self.isFieldCharacter(c) { position += 1 }
            guard position > start else { throw error("expected a field name") }
            return String(String.UnicodeScalarView(text[start..<position]))
        }

        mutating func value() throws(StorageError) -> String {
            if let c = current, c == "\"" || c == "'" || c == "/" { return try quotedString() }
            let start = position
            while let c = current, c != ",", !c.properties.isWhitespace { position += 1 }
            return String(String.UnicodeScalarView(text[start..<position]))
        }

        mutating func quotedString() throws(StorageError) -> String {
            guard let quote = current else { throw error("expected a quoted string") }
            position += 1
            var result = String.UnicodeScalarView()
            while let c = current {
                position += 1
                if c == quote { return String(result) }
                if c == "\\", let next = current {
                    position += 1
                    switch next {
                    case "n": result.append("\n")
                    case "t": result.append("\t")
                    case "r": result.append("\r")
                    case "\\", "\"", "'", "/": result.append(next)
                    default:
                        // Kept as written (a regular expression's \d stays \d).
                        result.append("\\")
                        result.append(next)
                    }
                } else {
                    result.append(c)
                }
            }
            throw error("unterminated quoted string")
        }
    }
}
