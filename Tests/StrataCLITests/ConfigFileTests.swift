import Foundation
import GraphDriver
@testable import StrataCLI
import Testing

/// Removes a file `configFile` made, and its directory.
func removeConfigFile(_ path: String) {
    removeScratchDirectory((path as NSString).deletingLastPathComponent)
}

/// Writes `text` to a fresh file in a directory of its own and returns its path.
func configFile(_ text: String, name: String = "storage.conf") throws -> String {
    let path = try makeScratchDirectory("strata-conf") + "/" + name
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    return path
}

/// The message of the error `body` throws, or nil.
func errorText(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch { return "\(error)" }
}

@Suite("storage.conf: the TOML reader")
struct ConfigFileTests {
    typealias Value = ConfigFile.Value

    /// Valid TOML that storage.conf files use, or could: each document, the values it must give
    /// (key path → value) and the line each key is written on.
    static let validCorpus: [(name: String, text: String, values: [([String], Value, Int)])] = [
        ("inline table, as Debian's file has it",
         "[storage.options]\npull_options = {enable_partial_images = \"false\", use_hard_links = \"false\", ostree_repos=\"\"}\n",
         [(["storage", "options", "pull_options", "use_hard_links"], .string("false"), 2),
          (["storage", "options", "pull_options"], .table(["enable_partial_images": .string("false"), "use_hard_links": .string("false"), "ostree_repos": .string("")]), 2)]),
        ("nested inline tables",
         "storage = { driver = \"overlay\", options = { overlay = { mountopt = \"nodev\" } } }\n",
         [(["storage", "options", "overlay", "mountopt"], .string("nodev"), 1), (["storage", "driver"], .string("overlay"), 1)]),
        ("multi-line array with comments, blank lines and a trailing comma",
         "[storage.options]\nadditionalimagestores = [ # stores\n  \"/a\", # one\n\n  # a comment line\n  '/b',\n]\nsize = \"1G\"\n",
         [(["storage", "options", "additionalimagestores"], .array([.string("/a"), .string("/b")]), 2),
          (["storage", "options", "size"], .string("1G"), 8)]),
        ("literal strings keep backslashes; multi-line strings",
         "[storage]\ngraphroot = 'C:\\x\\y'\nrunroot = '''\n/run/a'''\ndriver = \"\"\"\nover\\\n   lay\"\"\"\nimagestore = \"\"\"/q\"\"\"\"\n",
         [(["storage", "graphroot"], .string("C:\\x\\y"), 2), (["storage", "runroot"], .string("/run/a"), 3),
          (["storage", "driver"], .string("overlay"), 5), (["storage", "imagestore"], .string("/q\""), 8)]),
        ("dotted keys, quoted parts, spaces around dots",
         "top.level.key = \"nodev\"\n[storage]\noptions . overlay.\"size\" = \"2G\"\n\"run\" . 'x' = 1\n\"a.b\" = 2\n",
         [(["top", "level", "key"], .string("nodev"), 1), (["top", "level"], .table(["key": .string("nodev")]), 1),
          (["storage", "options", "overlay", "size"], .string("2G"), 3), (["storage", "run", "x"], .integer(1), 4),
          (["storage", "a.b"], .integer(2), 5)]),
        ("comments everywhere, a # inside strings, tabs, CRLF line ends",
         "# head\r\n[storage] # the table\r\n\tdriver\t=\t\"over#lay\" # tail\r\n#\r\n[storage.options.overlay]#c\r\nmountopt = 'a#b'#c\r\n",
         [(["storage", "driver"], .string("over#lay"), 3), (["storage", "options", "overlay", "mountopt"], .string("a#b"), 6)]),
        ("a subtable before its table; escapes in keys and values",
         "[storage.options.overlay]\nsize = \"1G\"\n[storage]\n\"k\\u00e9y\" = \"tab\\there \\\"q\\\" \\u00e9\"\n",
         [(["storage", "options", "overlay", "size"], .string("1G"), 1 + 1), (["storage", "kéy"], .string("tab\there \"q\" é"), 4)]),
        ("a byte order mark, and keys after an array of inline tables over several lines",
         "\u{FEFF}[storage]\nx = [\n  {a = 1},\n  {b = 2},\n]\ndriver = \"overlay\"\n",
         [(["storage", "driver"], .string("overlay"), 6), (["storage", "x"], .array([.table(["a": .integer(1)]), .table(["b": .integer(2)])]), 2)]),
        ("every kind of bare value TOML has",
         "i = [+1, -0, 1_000, 0xDEAD_beef, 0o755, 0b1010]\nf = [3.14, -0.01, 5e+22, 1E06, 6.626e-34, 224_617.445_991, inf, -nan]\n"
            + "t = [1979-05-27T07:32:00Z, 1979-05-27 00:32:00.999-07:00, 1979-05-27t07:32:00, 1979-05-27, 07:32:00.5, 00:00:00]\n"
            + "b = [true, false]\n",
         [(["i"], .array([.integer(1), .integer(0), .integer(1000), .integer(0xDEADBEEF), .integer(493), .integer(10)]), 1),
          (["b"], .array([.bool(true), .bool(false)]), 4)]),
        ("integers, floats, booleans, dates, arrays of tables",
         "a = 0x1F\nb = 1_000\nc = 0o755\nd = 6.5e-1\ne = true\nf = 1979-05-27T07:32:00Z\n[[g]]\nh = 1\n[[g]]\nh = 2\n",
         [(["a"], .integer(31), 1), (["b"], .integer(1000), 2), (["c"], .integer(493), 3), (["d"], .float(0.65), 4),
          (["e"], .bool(true), 5), (["g"], .array([.table(["h": .integer(1)]), .table(["h": .integer(2)])]), 7)]),
    ]

    @Test("every case of the valid corpus parses, with its values and lines", arguments: validCorpus.indices)
    func valid(_ index: Int) throws {
        let (name, text, values) = Self.validCorpus[index]
        let file = try ConfigFile(path: "case.conf", bytes: Array(text.utf8))
        for (key, expected, line) in values {
            var value: Value? = .table(file.root)
            for part in key {
                guard case .table(let t) = value else { value = nil; break }
                value = t[part]
            }
            #expect(value == expected, "\(name): \(key)")
            #expect(file.line(of: key) == line, "\(name): line of \(key)")
        }
    }

    /// Files TOML refuses, and the `file:line: key` each error must start with.
    static let invalidCorpus: [(text: String, location: String)] = [
        ("[storage]\ndriver = \n", ":2: driver"),
        ("[storage]\ngraphroot = \"/a\"\ngraphroot = \"/b\"\n", ":3: graphroot"),
        ("[storage]\nrunroot = \"/run\n", ":2: runroot"),
        ("[storage]\ngraph root = \"/x\"\n", ":2: graph root"),
        ("[storage]\ndriver = \"overlay\"\n[storage]\n", ":3: storage"),
        ("[storage.options]\nadditionalimagestores = [\n  \"/a\"\n  \"/b\",\n]\n", ":4: additionalimagestores"),
        ("[storage.options]\npull_options = {a = \"1\",\n b = \"2\"}\n", ":2: a"),
        ("[storage]\nrunroot = 'a' 'b'\n", ":2: runroot"),
        ("[storage\ndriver = \"overlay\"\n", ":1: storage"),
        ("[storage]\ndriver = \"overlay\"\nrunroot = \"/r\\q\"\n", ":3: runroot"),
        ("[storage]\ndriver = \"overlay\"\nrunroot = \"a\u{0}b\"\n", ":3: runroot"),
        ("[storage]\nrunroot = \"/r\\u0000\"\n", ":2: runroot"),
        ("[storage]\nsize = 1979-13-45\n", ":2: size"),
        // Headers that make toml++ 3.4.0 abort on an assertion: refused before it sees them.
        ("[storage]\ndriver = \"overlay\"\n[.options]\n", ":3: .options"),
        ("[storage]\n[ {a]\n", ":2: {a"),
        ("[[,x]]\n", ":1: ,x"),
        ("x = 1\n[\n]\n", ":2: x"),
        ("[storage.options]\nadditionalimagestores = [ \"/a\", # c\n}]\n", ":3: additionalimagestores"),
        ("[storage]\ngraphroot = /var/lib/x\n", ":2: graphroot"),
        ("when = 1979-05-27T\"07:32:00Z\n", ":1: when"),
        ("n = [1, 2, 0x]\n", ":1: n"),
    ]

    @Test("every case of the invalid corpus gives file:line: key", arguments: invalidCorpus.indices)
    func invalid(_ index: Int) throws {
        let (text, location) = Self.invalidCorpus[index]
        let message = errorText { _ = try ConfigFile(path: "bad.conf", bytes: Array(text.utf8)) }
        #expect(message?.hasPrefix("read configuration: bad.conf\(location): ") == true, "\(text): \(message ?? "no error")")
    }

    @Test("mangled copies of the corpus parse or are refused with file and line; deep nesting too")
    func mangled() throws {
        var seed: UInt64 = 0x5EED
        func random(_ n: Int) -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int((seed >> 33) % UInt64(n))
        }
        let sources = Self.validCorpus.map { Array($0.text.utf8) } + Self.invalidCorpus.map { Array($0.text.utf8) }
        let alphabet = Array("[]{}=,.\"'#\n \\u0a-_tf1:T+e9\t\r\u{01}\u{7f}".utf8)
        var refused = 0
        for round in 0..<3000 {
            var bytes = sources[round % sources.count]
            for _ in 0...random(4) where !bytes.isEmpty {
                let at = random(bytes.count)
                switch random(3) {
                case 0: bytes[at] = alphabet[random(alphabet.count)]
                case 1: bytes.insert(alphabet[random(alphabet.count)], at: at)
                default: bytes.remove(at: at)
                }
            }
            if let message = errorText({ _ = try ConfigFile(path: "m.conf", bytes: bytes) }) {
                refused += 1
                #expect(message.hasPrefix("read configuration: m.conf:"), "\(message)")
            }
        }
        #expect(refused > 0 && refused < 3000)
        for deep in ["a = " + String(repeating: "[", count: 100_000), "a = " + String(repeating: "{b=", count: 50_000)] {
            let message = errorText { _ = try ConfigFile(path: "deep.conf", bytes: Array(deep.utf8)) }
            #expect(message?.hasPrefix("read configuration: deep.conf:1: ") == true, "\(message ?? "no error")")
        }
    }

    @Test("bytes that are not UTF-8 are refused with their line")
    func notUTF8() throws {
        let bytes = Array("[storage]\ndriver = \"overlay\"\nrunroot = \"".utf8) + [0xFF, 0xFE] + Array("\"\n".utf8)
        let message = errorText { _ = try ConfigFile(path: "bad.conf", bytes: bytes) }
        #expect(message == "read configuration: bad.conf:3: runroot: the line is not valid UTF-8")
    }
}

@Suite("storage.conf: what Strata takes from it")
struct StoreSettingsTests {
    let defaults = StoreSettings(root: "/var/lib/strata", runRoot: "/run/strata", options: [])

    func load(_ texts: String..., environment: [String: String] = [:], userID: UInt32 = 0) throws -> StoreSettings {
        let paths = try texts.map { try configFile($0) }
        defer { paths.forEach(removeConfigFile) }
        return try StoreSettings.load(paths: paths, defaults: defaults, environment: environment, userID: userID)
    }

    @Test("[storage.options.overlay] wins over [storage.options]; plain TOML types are taken")
    func overlayWins() throws {
        let settings = try load("""
            [storage.options]
            mountopt = "nodev"
            size = "5G"
            force_mask = 0o700
            skip_mount_home = "true"
            [storage.options.overlay]
            size = 1048576
            inodes = 1000
            ignore_chown_errors = true
            """)
        #expect(settings.options == ["mountopt=nodev", "size=1048576", "inodes=1000", "force_mask=700",
                                     "skip_mount_home=true", "ignore_chown_errors=true"])
        #expect(settings.warnings.isEmpty)
    }

    @Test("other drivers' keys and unsupported features are named in one line; unknown keys in another")
    func warnings() throws {
        let path = try configFile("""
            [storage]
            driver = "overlay"
            transient_store = true
            colour = "blue"
            [storage.options]
            pull_options = {enable_partial_images = "false"}
            mount_program = "/usr/bin/fuse-overlayfs"
            [storage.options.thinpool]
            basesize = "10G"
            [storage.options.zfs]
            [storage.options.overlay]
            mountopt = "nodev"
            [other]
            x = 1
            """)
        defer { removeConfigFile(path) }

        let settings = try StoreSettings.load(paths: [path], defaults: defaults, environment: [:], userID: 0)
        #expect(settings.options == ["mountopt=nodev"])
        #expect(settings.warnings == [
            "not used by Strata, ignored: storage.transient_store (\(path):3), storage.options.pull_options (\(path):6), "
                + "storage.options.mount_program (\(path):7), storage.options.thinpool.basesize (\(path):9)",
            "unknown keys, ignored: storage.colour (\(path):4), other (\(path):13)",
        ])
    }

    @Test("values of the wrong type for keys Strata uses are errors naming file, line and key")
    func wrongTypes() throws {
        let cases: [(String, String)] = [
            ("[storage]\ngraphroot = 12\n", ":2: graphroot: must be a string, not an integer"),
            ("[storage]\noptions = \"x\"\n", ":2: options: must be a table, not a string"),
            ("[storage.options]\nadditionalimagestores = [\n  \"/a\",\n  1,\n]\n",
             ":2: additionalimagestores: must be an array of strings; item 2 is an integer"),
            ("storage = { options = { overlay = { mountopt = 1 } } }\n", ":1: mountopt: must be a string, not an integer"),
            ("storage.options.overlay.skip_mount_home = 1\n", ":1: skip_mount_home: must be a string or a boolean, not an integer"),
            ("[storage]\ndriver = \"btrfs\"\n", ":2: driver: driver 'btrfs' is not one Strata provides (overlay)"),
            ("[storage.options.overlay]\nsize = \"12Q\"\n", ":2: size: "),
            ("[storage.options.overlay]\nforce_mask = \"everyone\"\n", ":2: force_mask: "),
            ("[storage.options]\nadditionallayerstores = [\"relative\"]\n", ":2: additionallayerstores: "),
        ]
        for (text, expected) in cases {
            let path = try configFile(text)
            defer { removeConfigFile(path) }
            let message = errorText { _ = try StoreSettings.load(paths: [path], defaults: defaults, environment: [:], userID: 0) }
            #expect(message?.hasPrefix("read configuration: \(path)\(expected)") == true, "\(text): \(message ?? "no error")")
        }
    }

    @Test("a later file's keys replace the earlier ones' key by key")
    func dropIns() throws {
        let settings = try load("""
            [storage]
            graphroot = "/main/root"
            runroot = "/main/run"
            [storage.options.overlay]
            mountopt = "nodev"
            size = "1G"
            """, """
            [storage]
            graphroot = "/dropin/root"
            [storage.options.overlay]
            mountopt = "nodev,noexec"
            """)
        #expect(settings.root == "/dropin/root")
        #expect(settings.runRoot == "/main/run")
        #expect(settings.options == ["mountopt=nodev,noexec", "size=1G"])
    }

    @Test("paths expand $UID and the environment; rootless_storage_path is the root of users other than root")
    func paths() throws {
        let text = """
            [storage]
            graphroot = "$HOME/g/${KIND}"
            runroot = "/run/user/$UID/x$UNSET"
            rootless_storage_path = "$HOME/rootless"
            imagestore = "/images"
            """
        let root = try load(text, environment: ["HOME": "/home/u", "KIND": "k"], userID: 0)
        #expect(root.root == "/home/u/g/k")
        #expect(root.runRoot == "/run/user/0/x")
        #expect(root.options == ["imagestore=/images"])
        let user = try load(text, environment: ["HOME": "/home/u"], userID: 1000)
        #expect(user.root == "/home/u/rootless")
        #expect(user.runRoot == "/run/user/1000/x")
    }

    @Test("the command line replaces single-valued options and adds stores")
    func commandLineWins() throws {
        var settings = try load("""
            [storage.options]
            additionalimagestores = ["/a"]
            [storage.options.overlay]
            mountopt = "nodev"
            size = "1G"
            """)
        settings.applyCommandLine(["overlay.mountopt=noexec", "additionalimagestore=/b"])
        #expect(settings.options == ["size=1G", "additionalimagestore=/a", "overlay.mountopt=noexec", "additionalimagestore=/b"])
    }

    @Test("Debian's /usr/share/containers/storage.conf gives what containers/storage reads from it",
          .enabled(if: FileManager.default.fileExists(atPath: "/usr/share/containers/storage.conf"),
                   "needs Debian's containers-storage package (in the Makefile's DEBIAN_PACKAGES)"))
    func debianStock() throws {
        let path = "/usr/share/containers/storage.conf"
        let settings = try StoreSettings.load(paths: [path], defaults: defaults, environment: [:], userID: 0)
        #expect(settings.root == "/var/lib/containers/storage")
        #expect(settings.runRoot == "/run/containers/storage")
        #expect(settings.options == ["mountopt=nodev"])
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let pull = try #require(lines.firstIndex { $0.hasPrefix("pull_options") }) + 1
        #expect(settings.warnings == ["not used by Strata, ignored: storage.options.pull_options (\(path):\(pull))"])
    }
}
