import ArgumentParser
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A tar archive the benchmark times operations on, made once under the work directory.
enum Fixture: String, CaseIterable, ExpressibleByArgument {
    /// A Debian 12 minbase root filesystem (`debootstrap --variant=minbase bookworm`).
    case minbase
    /// 100,000 files of 1–4 KiB in 400 directories.
    case small
    /// Four 256 MiB files.
    case large

    var archiveName: String { "\(rawValue).tar" }

    func archive(in workDirectory: String) -> String { "\(workDirectory)/\(archiveName)" }

    /// A scratch filesystem big enough to hold the fixture's tree twice (tree and export output)
    /// or one tree plus Strata's staging directory.
    func scratchSize(in workDirectory: String) -> Int64 {
        let archive = Shell.fileSize(archive(in: workDirectory))
        let wanted = archive * 3 + (self == .small ? 1 << 30 : 0)
        return max(2 << 30, (wanted + (1 << 30) - 1) / (1 << 30) * (1 << 30))
    }

    /// Makes the archive unless it is already there.
    func make(in workDirectory: String, log: (String) -> Void) throws {
        let archive = archive(in: workDirectory)
        if Shell.exists(archive) { return }
        let tree = "\(workDirectory)/\(rawValue)-tree"
        switch self {
        case .minbase:
            try makeMinbaseTree(at: tree, log: log)
        case .small:
            log("writing 100,000 small files to \(tree)")
            try FixtureWriter.smallFiles(at: tree)
        case .large:
            log("writing four 256 MiB files to \(tree)")
            try FixtureWriter.largeFiles(at: tree)
        }
        log("archiving \(tree) -> \(archive)")
        let partial = archive + ".partial"
        try Shell.run(["tar", "--xattrs", "--xattrs-include=*", "--format=pax", "--numeric-owner",
                       "-cf", partial, "-C", tree, "."])
        guard rename(partial, archive) == 0 else { throw BenchError("cannot rename \(partial)") }
        log("removing \(tree)")
        try FileDescriptor.currentWorkingDirectory.removeTree(at: FilePath(tree))
    }

    private func makeMinbaseTree(at tree: String, log: (String) -> Void) throws {
        if !Shell.exists(tree) { try Shell.ensureCommand("debootstrap", package: "debootstrap", log: log) }
        // A finished debootstrap is renamed from `.partial`, so a tree under the final name is whole.
        if Shell.exists(tree) { return }
        let mirror = try DebianMirror.configured()
        let partial = tree + ".partial"
        try? FileDescriptor.currentWorkingDirectory.removeTree(at: FilePath(partial))
        log("debootstrap --variant=minbase bookworm from \(mirror) (a few minutes)")
        try Shell.run(["debootstrap", "--variant=minbase", "bookworm", partial, mirror], quiet: true)
        guard rename(partial, tree) == 0 else { throw BenchError("cannot rename \(partial)") }
    }
}

/// The Debian mirror this machine's apt uses for bookworm. There is no built-in default: a
/// machine whose apt names no bookworm source gets an error saying so.
enum DebianMirror {
    /// The first `bookworm` URI in /etc/apt/sources.list (one-line format) or
    /// /etc/apt/sources.list.d/*.sources (deb822 format).
    static func configured() throws -> String {
        var files = ["/etc/apt/sources.list"]
        if let names = try? FileDescriptor.openDirectory("/etc/apt/sources.list.d").closingAfter({ try $0.directoryEntries() }) {
            files += names.map(\.name).filter { $0.hasSuffix(".list") || $0.hasSuffix(".sources") }.sorted()
                .map { "/etc/apt/sources.list.d/\($0)" }
        }
        for file in files {
            guard let text = read(file) else { continue }
            if let uri = file.hasSuffix(".sources") ? fromDeb822(text) : fromOneLine(text) { return uri }
        }
        throw BenchError("no Debian bookworm source in apt's configuration (\(files.joined(separator: ", "))): "
            + "the minbase fixture is made with debootstrap from the mirror apt uses; add one, or make the fixture elsewhere")
    }

    static func fromOneLine(_ text: String) -> String? {
        for line in text.split(separator: "\n") {
            var words = line.split(separator: " ").map(String.init)
            guard words.first == "deb" else { continue }
            words.removeFirst()
            if words.first?.hasPrefix("[") == true {
                while let word = words.first, !word.hasSuffix("]") { words.removeFirst() }
                if !words.isEmpty { words.removeFirst() }
            }
            if words.count >= 2, words[1] == "bookworm" { return words[0] }
        }
        return nil
    }

    static func fromDeb822(_ text: String) -> String? {
        for stanza in text.split(separator: "\n\n", omittingEmptySubsequences: true) {
            var uris: [String] = [], suites: [String] = [], types: [String] = []
            for line in stanza.split(separator: "\n") where !line.hasPrefix("#") {
                let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmed(of: " \t") }
                guard parts.count == 2 else { continue }
                let values = parts[1].split(separator: " ").map(String.init)
                switch parts[0].lowercased() {
                case "uris": uris = values
                case "suites": suites = values
                case "types": types = values
                default: break
                }
            }
            if types.contains("deb"), suites.contains("bookworm"), let uri = uris.first { return uri }
        }
        return nil
    }

    private static func read(_ path: String) -> String? {
        guard let fd = try? FileDescriptor.currentWorkingDirectory.open(at: FilePath(path), .readOnly) else { return nil }
        defer { fd.closeQuietly() }
        return (try? fd.readToEnd()).map { String(decoding: $0, as: UTF8.self) }
    }
}

extension StringProtocol {
    func trimmed(of set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return String(s)
    }
}

extension FileDescriptor {
    func closingAfter<R>(_ body: (FileDescriptor) throws -> R) rethrows -> R {
        defer { closeQuietly() }
        return try body(self)
    }
}

/// Writes the synthetic fixture trees with deterministic pseudo-random contents.
enum FixtureWriter {
    /// 100,000 files of 1–4 KiB in 400 directories (250 each).
    static func smallFiles(at tree: String) throws {
        var random = XorShift(seed: 0x5354_5241_5441)  // "STRATA"
        try FileDescriptor.currentWorkingDirectory.makeDirectory(at: FilePath(tree))
        let root = try FileDescriptor.openDirectory(FilePath(tree))
        defer { root.closeQuietly() }
        var buffer = [UInt8](repeating: 0, count: 4096)
        for d in 0..<400 {
            let dirName = FilePath(String(format3(d / 20)) + "/" + String(format3(d)))
            if d % 20 == 0 { try root.makeDirectory(at: FilePath(String(format3(d / 20)))) }
            try root.makeDirectory(at: dirName)
            let dir = try root.openDirectory(at: dirName)
            defer { dir.closeQuietly() }
            for f in 0..<250 {
                let size = 1024 + Int(random.next() % 3073)  // 1024…4096 bytes
                random.fill(&buffer, count: size)
                let fd = try dir.open(at: FilePath("file-\(f)"), .writeOnly, options: [.create, .truncate],
                                      permissions: .init(rawValue: 0o644))
                try buffer.withUnsafeBytes { try fd.writeFully(UnsafeRawBufferPointer(rebasing: $0[0..<size])) }
                fd.closeQuietly()
            }
        }
    }

    /// Four files of 256 MiB.
    static func largeFiles(at tree: String) throws {
        var random = XorShift(seed: 0x4C41_5247_45)  // "LARGE"
        try FileDescriptor.currentWorkingDirectory.makeDirectory(at: FilePath(tree))
        let root = try FileDescriptor.openDirectory(FilePath(tree))
        defer { root.closeQuietly() }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for i in 0..<4 {
            let fd = try root.open(at: FilePath("blob-\(i).bin"), .writeOnly, options: [.create, .truncate],
                                   permissions: .init(rawValue: 0o644))
            defer { fd.closeQuietly() }
            for _ in 0..<256 {
                random.fill(&buffer, count: buffer.count)
                try buffer.withUnsafeBytes { try fd.writeFully($0) }
            }
        }
    }

    private static func format3(_ n: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 3 - s.count)) + s
    }
}

/// A small fast PRNG: file contents must not be all zeros (or compressible runs) but need not be
/// good randomness.
struct XorShift {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }

    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }

    mutating func fill(_ buffer: inout [UInt8], count: Int) {
        buffer.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset + 8 <= count {
                raw.storeBytes(of: next(), toByteOffset: offset, as: UInt64.self)
                offset += 8
            }
            var last = next()
            while offset < count {
                raw[offset] = UInt8(truncatingIfNeeded: last)
                last >>= 8
                offset += 1
            }
        }
    }
}
