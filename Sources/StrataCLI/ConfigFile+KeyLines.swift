/// Where each key of a TOML document is written: the line of every table header, `key = value`
/// pair (dotted keys and the keys of inline tables included) and the tables that dotted keys
/// define on the way.
///
/// TOMLKit gives a line only for a syntax error, not for the values of a document it parsed, so
/// a value of the wrong type is placed by this scan of the text: a small TOML lexer that knows
/// strings (basic, literal, multi-line, with escapes), comments, arrays and inline tables well
/// enough to follow keys, and never refuses anything (TOMLKit has already judged the syntax;
/// on a file it refused, the scan still gives the key written at or before the error's line).
/// Keys inside arrays (arrays of inline tables) are not recorded: nothing Strata reads is there.
struct TOMLKeyLines {
    /// The line (1-based) where each key path is first written.
    private(set) var lines: [[String]: Int] = [:]
    /// Every key path in the order written, with its line.
    private(set) var written: [(key: [String], line: Int)] = []
    /// The first line holding a basic string with a `\u0000` escape: TOMLKit hands strings over
    /// as C strings, which would end there without a word.
    private(set) var nulEscapeLine: Int?
    /// The first place where toml++ 3.4.0 (inside TOMLKit 0.6.0) would fail an assertion and
    /// abort the process instead of reporting an error, so that such a file never reaches it:
    /// a table header that does not begin with a key (`[{`, `[.a]`, `[,]`, `[` and a line
    /// end…), a `}` where an array wants its next value (`[ "a", }`), or a bare value that is not
    /// one (``TOMLScalar``).
    private(set) var refusal: (line: Int, reason: String)?

    init(scanning text: [UInt8]) {
        var scanner = Scanner(bytes: text)
        scanner.document(into: &self)
    }

    /// The key written last on `line`.
    func key(on line: Int) -> [String]? {
        written.last(where: { $0.line == line })?.key
    }

    /// The key written last at or before `line`.
    func key(atOrBefore line: Int) -> [String]? {
        written.last(where: { $0.line <= line })?.key
    }

    fileprivate mutating func record(_ key: [String], line: Int) {
        guard !key.isEmpty else { return }
        written.append((key, line))
        guard lines[key] == nil else { return }
        // Dotted keys define their parent tables where they are written.
        for end in 1...key.count where lines[Array(key[..<end])] == nil {
            lines[Array(key[..<end])] = line
        }
    }

    fileprivate mutating func noteNulEscape(line: Int) {
        if nulEscapeLine == nil { nulEscapeLine = line }
    }

    fileprivate mutating func refuse(line: Int, _ reason: String) {
        if refusal == nil { refusal = (line, reason) }
    }
}

private struct Scanner {
    static let maximumDepth = 256
    let bytes: [UInt8]
    var index = 0
    var line = 1

    init(bytes: [UInt8]) {
        self.bytes = bytes
        // A byte order mark, which TOML parsers skip.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
    }

    var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    func byte(at offset: Int) -> UInt8? { index + offset < bytes.count ? bytes[index + offset] : nil }

    mutating func advance() {
        if bytes[index] == UInt8(ascii: "\n") { line += 1 }
        index += 1
    }

    mutating func skipSpaces() {
        while let c = current, c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") { index += 1 }
    }

    /// Spaces, line ends and comments.
    mutating func skipTrivia() {
        while let c = current {
            if c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\r") || c == UInt8(ascii: "\n") {
                advance()
            } else if c == UInt8(ascii: "#") {
                skipLine()
            } else {
                return
            }
        }
    }

    /// Up to the end of the line (its newline left for `skipTrivia`).
    mutating func skipLine() {
        while let c = current, c != UInt8(ascii: "\n") { index += 1 }
    }

    mutating func document(into keys: inout TOMLKeyLines) {
        var table: [String] = []
        while true {
            skipTrivia()
            guard let c = current else { return }
            let start = line
            if c == UInt8(ascii: "[") {
                index += 1
                let arrayOfTables = current == UInt8(ascii: "[")
                if arrayOfTables { index += 1 }
                skipSpaces()
                if let c = current, !isBareKeyByte(c), c != UInt8(ascii: "\""), c != UInt8(ascii: "'"), c != UInt8(ascii: "]") {
                    keys.refuse(line: start, "a table header must begin with a key name")
                }
                table = keyPath(into: &keys)
                keys.record(table, line: start)
                skipSpaces()
                while current == UInt8(ascii: "]") { index += 1 }
                skipLine()
                continue
            }
            let key = keyPath(into: &keys)
            skipSpaces()
            guard !key.isEmpty, current == UInt8(ascii: "=") else {
                skipLine()
                continue
            }
            index += 1
            keys.record(table + key, line: start)
            value(under: table + key, into: &keys)
        }
    }

    /// A dotted key: bare, quoted and literal parts, spaces allowed around the dots.
    mutating func keyPath(into keys: inout TOMLKeyLines) -> [String] {
        var parts: [String] = []
        while true {
            skipSpaces()
            guard let part = simpleKey(into: &keys) else { return parts }
            parts.append(part)
            skipSpaces()
            guard current == UInt8(ascii: ".") else { return parts }
            index += 1
        }
    }

    mutating func simpleKey(into keys: inout TOMLKeyLines) -> String? {
        guard let c = current else { return nil }
        if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") { return string(into: &keys) }
        let start = index
        while let c = current, isBareKeyByte(c) { index += 1 }
        return index > start ? String(decoding: bytes[start..<index], as: UTF8.self) : nil
    }

    func isBareKeyByte(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z")) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z"))
            || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
    }

    /// A value; the keys of inline tables in it are recorded under `prefix` (nil inside arrays).
    /// Past `maximumDepth` nested arrays and tables (which TOMLKit refuses anyway) the bytes are
    /// skipped one by one, so that no input can exhaust the stack.
    mutating func value(under prefix: [String]?, into keys: inout TOMLKeyLines, depth: Int = 0) {
        skipSpaces()
        guard let c = current else { return }
        if depth > Self.maximumDepth {
            advance()
            return
        }
        switch c {
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            _ = string(into: &keys)
        case UInt8(ascii: "{"):
            index += 1
            while true {
                skipTrivia()
                guard let c = current else { return }
                if c == UInt8(ascii: "}") { index += 1; return }
                if c == UInt8(ascii: ",") { index += 1; continue }
                let start = line
                let key = keyPath(into: &keys)
                skipSpaces()
                guard !key.isEmpty, current == UInt8(ascii: "=") else {
                    if current != nil { advance() }
                    continue
                }
                index += 1
                if let prefix { keys.record(prefix + key, line: start) }
                value(under: prefix.map { $0 + key }, into: &keys, depth: depth + 1)
            }
        case UInt8(ascii: "["):
            index += 1
            while true {
                skipTrivia()
                guard let c = current else { return }
                if c == UInt8(ascii: "]") { index += 1; return }
                if c == UInt8(ascii: ",") { index += 1; continue }
                if c == UInt8(ascii: "}") { keys.refuse(line: line, "'}' where the array wants a value or ']'") }
                let before = index
                value(under: nil, into: &keys, depth: depth + 1)
                if index == before { advance() }
            }
        default:
            // Numbers, booleans, dates and times: up to what ends a value (a space too, except
            // between the date and the time of a date-time).
            let start = index
            let ends = " \t\r\n,]}#".utf8
            while let c = current, !ends.contains(c) {
                index += 1
                if current == UInt8(ascii: " "), index - start == 10, let next = byte(at: 1),
                   next >= UInt8(ascii: "0"), next <= UInt8(ascii: "9") {
                    index += 1
                }
            }
            if index > start, !TOMLScalar.isValid(bytes[start..<index]) {
                let token = String(decoding: bytes[start..<min(index, start + 40)], as: UTF8.self)
                keys.refuse(line: line, "'\(token)' is not a TOML value (a string needs quotes)")
            }
        }
    }

    /// A string of any of the four kinds, decoded (keys need the text; values are only skipped).
    mutating func string(into keys: inout TOMLKeyLines) -> String {
        let quote = bytes[index]
        let basic = quote == UInt8(ascii: "\"")
        let multiLine = byte(at: 1) == quote && byte(at: 2) == quote
        index += multiLine ? 3 : 1
        var text: [UInt8] = []
        while let c = current {
            if c == quote {
                if !multiLine { index += 1; return String(decoding: text, as: UTF8.self) }
                if byte(at: 1) == quote && byte(at: 2) == quote {
                    index += 3
                    // Up to two quotes more belong to the string: `"""a""""` is `a"`.
                    var extra = 0
                    while current == quote && extra < 2 { text.append(quote); index += 1; extra += 1 }
                    return String(decoding: text, as: UTF8.self)
                }
            }
            if c == UInt8(ascii: "\n") && !multiLine { return String(decoding: text, as: UTF8.self) }
            if basic && c == UInt8(ascii: "\\") {
                escape(into: &text, keys: &keys)
                continue
            }
            text.append(c)
            advance()
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// One escape sequence of a basic string, the backslash at `index`.
    mutating func escape(into text: inout [UInt8], keys: inout TOMLKeyLines) {
        index += 1
        guard let c = current else { return }
        switch c {
        case UInt8(ascii: "b"): text.append(0x08)
        case UInt8(ascii: "t"): text.append(0x09)
        case UInt8(ascii: "n"): text.append(0x0A)
        case UInt8(ascii: "f"): text.append(0x0C)
        case UInt8(ascii: "r"): text.append(0x0D)
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let count = c == UInt8(ascii: "u") ? 4 : 8
            let digits = bytes[(index + 1)..<min(index + 1 + count, bytes.count)]
            let scalar = UInt32(String(decoding: digits, as: UTF8.self), radix: 16).flatMap(Unicode.Scalar.init)
            if scalar == "\0" { keys.noteNulEscape(line: line) }
            if let scalar { text += Array(String(Character(scalar)).utf8) }
            index += digits.count
        case UInt8(ascii: "\n"), UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
            // A line-ending backslash in a multi-line string: the line end and the spaces go.
            while let c = current, " \t\r\n".utf8.contains(c) { advance() }
            return
        default: text.append(c)
        }
        advance()
    }
}
