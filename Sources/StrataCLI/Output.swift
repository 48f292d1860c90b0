#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import GraphDriver

#if canImport(Glibc)
import Glibc
#endif

/// What a command prints on standard output: its text form and, for the commands that take
/// `--json`, its JSON form. Every command prints through ``write(json:)``.
struct CommandOutput {
    /// The text form: whole lines, each ending in a newline.
    var text: String
    /// The JSON form, or nil for a command whose result is text only.
    var json: JSONValue?
    /// How the JSON form is laid out at its top level.
    var layout: JSONValue.Layout

    init(text: String, json: JSONValue? = nil, layout: JSONValue.Layout = .inline) {
        self.text = text
        self.json = json
        self.layout = layout
    }

    /// One line of text (a path, a size, a layer ID).
    static func line(_ text: String) -> CommandOutput {
        CommandOutput(text: text + "\n")
    }

    /// Key/value pairs: `Key: value` lines, or a JSON object of strings, one member a line.
    static func fields(_ items: [DriverStatusItem]) -> CommandOutput {
        CommandOutput(text: items.map { "\($0.key): \($0.value)\n" }.joined(),
                      json: .object(items.map { ($0.key, .string($0.value)) }), layout: .oneMemberPerLine)
    }

    /// Writes the JSON form when `json` is set (and there is one), else the text form.
    func write(json asJSON: Bool = false) {
        if asJSON, let json {
            writeOutput(json.encoded(layout) + "\n")
        } else {
            writeOutput(text)
        }
    }
}

/// A JSON document whose members keep the order they are given in. Scalars are encoded by
/// Foundation's `JSONEncoder`; this type only lays out arrays and objects.
indirect enum JSONValue {
    case string(String)
    case integer(Int64)
    case bool(Bool)
    case array([JSONValue])
    case object([(String, JSONValue)])

    /// How an array or object is laid out.
    enum Layout {
        /// On one line: `[a, b]`, `{"k": v, "l": w}`.
        case inline
        /// One element or member a line (what inside them stays inline): `[a,\n b]`,
        /// `{\n  "k": v,\n  "l": w\n}`.
        case oneMemberPerLine
    }

    /// The JSON text, laid out as `layout` says at the top level and inline below it.
    func encoded(_ layout: Layout = .inline) -> String {
        switch self {
        case .string(let text): return Self.scalar(text)
        case .integer(let number): return Self.scalar(number)
        case .bool(let flag): return Self.scalar(flag)
        case .array(let elements):
            let items = elements.map { $0.encoded() }
            switch layout {
            case .inline: return "[" + items.joined(separator: ", ") + "]"
            case .oneMemberPerLine: return "[" + items.joined(separator: ",\n ") + "]"
            }
        case .object(let members):
            let items = members.map { Self.scalar($0.0) + ": " + $0.1.encoded() }
            switch layout {
            case .inline: return "{" + items.joined(separator: ", ") + "}"
            case .oneMemberPerLine: return "{\n" + items.map { "  " + $0 }.joined(separator: ",\n") + "\n}"
            }
        }
    }

    /// One scalar as JSON text. Slashes stay as they are (paths are most of what is printed).
    private static func scalar<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        // Encoding a string, an integer or a Boolean cannot fail.
        guard let data = try? encoder.encode(value) else { preconditionFailure("JSONEncoder failed on \(value)") }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Writes text to standard error.
func writeError(_ text: String) {
    writeAll(text, to: 2)
}

/// Writes text to standard output, unbuffered (commands print through ``CommandOutput``).
private func writeOutput(_ text: String) {
    writeAll(text, to: 1)
}

/// Writes all of `text` to descriptor `fd`, stopping at the first failed write.
private func writeAll(_ text: String, to fd: Int32) {
    let bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if n <= 0 { return }
        offset += n
    }
}
