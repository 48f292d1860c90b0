/// One line of `/proc/self/mountinfo`, the fields the probes need.
public struct MountEntry: Sendable, Equatable {
    public var mountPoint: String
    public var fileSystemType: String
    public var source: String
    /// Per-mount and per-superblock options together (`rw`, `prjquota`, …).
    public var options: [String]

    public func hasOption(_ name: String) -> Bool {
        options.contains { $0 == name || $0.hasPrefix(name + "=") }
    }
}

public enum MountTable {
    /// Parses mountinfo text (see proc(5)): `id parent major:minor root mountpoint options
    /// [optional fields…] - fstype source superoptions`.
    public static func parse(_ text: String) -> [MountEntry] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            guard let dash = fields.firstIndex(of: "-"), dash >= 6, fields.count >= dash + 4 else { return nil }
            let mountOptions = fields[5].split(separator: ",").map(String.init)
            let superOptions = fields[dash + 3].split(separator: ",").map(String.init)
            return MountEntry(
                mountPoint: unescape(fields[4]), fileSystemType: fields[dash + 1],
                source: unescape(fields[dash + 2]), options: mountOptions + superOptions)
        }
    }

    /// The mounts of this process's mount namespace.
    public static func current() -> [MountEntry] {
        parse(Host.readFile("/proc/self/mountinfo") ?? "")
    }

    /// mountinfo escapes space, tab, newline and backslash as `\ooo`.
    static func unescape(_ field: String) -> String {
        guard field.contains("\\") else { return field }
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "\\"), utf8.count >= 3,
               let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
