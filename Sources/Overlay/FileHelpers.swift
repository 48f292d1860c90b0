import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension FileDescriptor {
    /// Reads a small file relative to this directory as text.
    func readText(at name: FilePath) throws(Errno) -> String {
        let fd = try open(at: name, flags: O_RDONLY | O_NOFOLLOW)
        defer { fd.closeQuietly() }
        return String(decoding: try fd.readToEnd(), as: UTF8.self)
    }

    /// Writes a small file relative to this directory, replacing it atomically through a
    /// temporary name.
    func writeText(_ text: String, at name: FilePath, permissions: FilePermissions = .init(rawValue: 0o644)) throws(Errno) {
        let temporary = FilePath(".\(name.lastComponent?.string ?? "file").\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
        let directory: FilePath = name.removingLastComponent()
        let temporaryPath = directory.isEmpty ? temporary : directory.appending(temporary.string)
        let fd = try open(at: temporaryPath, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
                          permissions: permissions.rawValue)
        do throws(Errno) {
            let bytes = Array(text.utf8)
            let written: Result<Void, Errno> = bytes.withUnsafeBytes { b in
                Result { () throws(Errno) in try fd.writeFully(b) }
            }
            try written.get()
            fd.closeQuietly()
            try rename(temporaryPath, to: name)
        } catch {
            fd.closeQuietly()
            try? remove(at: temporaryPath)
            throw error
        }
    }

    /// The entries of a directory relative to this one, through a descriptor of its own: a
    /// listing moves its descriptor's offset, which threads sharing a descriptor must not race on.
    func entries(at path: FilePath = ".") throws(Errno) -> [DirectoryEntry] {
        let fd = try openDirectory(at: path)
        defer { fd.closeQuietly() }
        return try fd.directoryEntries()
    }

    /// Makes a directory, succeeding when it already exists.
    func makeDirectoryIfMissing(at path: FilePath, permissions: FilePermissions = .init(rawValue: 0o700)) throws(Errno) {
        do throws(Errno) { try makeDirectory(at: path, permissions: permissions) } catch .fileExists {}
    }
}

/// Makes every missing directory of an absolute path.
func makeDirectories(_ path: FilePath, permissions: FilePermissions = .init(rawValue: 0o700)) throws(Errno) {
    try FileDescriptor.currentWorkingDirectory.makeDirectories(at: path, permissions: permissions)
}

/// A random lowercase hex string for temporary names.
func randomSuffix() -> String {
    String(UInt64.random(in: 0...UInt64.max), radix: 16)
}

/// The system page size: the most bytes `mount(2)` reads from its data argument.
let systemPageSize: Int = Int(sysconf(Int32(_SC_PAGESIZE)))
