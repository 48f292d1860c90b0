import GraphDriver
import SystemPackage

/// A tar entry's name made safe to use under a layer root.
///
/// Empty and `.` components are dropped and a leading `/` is ignored, so `./a//b` and `/a/b`
/// both name `a/b`. A `..` component is refused outright: no entry may climb out of the layer,
/// whatever the directories it passes through turn out to be.
struct EntryPath: Hashable {
    /// The components joined with `/`, no leading or trailing slash; empty for the root.
    let joined: [UInt8]
    /// Where the last component starts in `joined`.
    private let lastStart: Int

    init(_ raw: [UInt8]) throws(StorageError) {
        var joined: [UInt8] = []
        joined.reserveCapacity(raw.count)
        var lastStart = 0
        var index = 0
        while index < raw.count {
            var end = index
            while end < raw.count && raw[end] != UInt8(ascii: "/") { end += 1 }
            let length = end - index
            if length == 0 || (length == 1 && raw[index] == UInt8(ascii: ".")) {
                // empty or "." component: nothing to add
            } else if length == 2 && raw[index] == UInt8(ascii: ".") && raw[index + 1] == UInt8(ascii: ".") {
                throw StorageError(
                    .unsafePath, "apply diff", path: String(decoding: raw, as: UTF8.self),
                    reason: "the entry name climbs out of the layer with '..'")
            } else {
                if !joined.isEmpty { joined.append(UInt8(ascii: "/")) }
                lastStart = joined.count
                joined.append(contentsOf: raw[index..<end])
            }
            index = end + 1
        }
        self.joined = joined
        self.lastStart = lastStart
    }

    private init(joined: [UInt8], lastStart: Int) {
        self.joined = joined
        self.lastStart = lastStart
    }

    /// Whether this names the layer root itself (`./`).
    var isRoot: Bool { joined.isEmpty }

    /// The last component's bytes.
    var name: ArraySlice<UInt8> { joined[lastStart...] }

    /// The directory holding this entry.
    var parent: EntryPath {
        if lastStart == 0 { return EntryPath(joined: [], lastStart: 0) }
        let parentJoined = Array(joined[..<(lastStart - 1)])
        let start = (parentJoined.lastIndex(of: UInt8(ascii: "/")).map { $0 + 1 }) ?? 0
        return EntryPath(joined: parentJoined, lastStart: start)
    }

    /// A sibling of this entry in the same directory.
    func sibling(named newName: ArraySlice<UInt8>) -> EntryPath {
        EntryPath(joined: Array(joined[..<lastStart]) + newName, lastStart: lastStart)
    }

    /// The relative path, for system calls.
    var filePath: FilePath { Self.filePath(joined[...]) }

    /// The last component as a relative path, for `*at` calls on the parent.
    var nameFilePath: FilePath { Self.filePath(name) }

    var description: String { String(decoding: joined, as: UTF8.self) }

    static func filePath(_ bytes: ArraySlice<UInt8>) -> FilePath {
        if bytes.isEmpty { return "." }
        var withNul = Array(bytes)
        withNul.append(0)
        return withNul.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { FilePath(platformString: $0.baseAddress!) }
        }
    }
}
