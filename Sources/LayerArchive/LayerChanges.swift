import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Change lists of layers: what a layer adds, modifies and deletes relative to what lies below.
public enum LayerChanges {
    /// The changes of an overlay layer against its lowers, computed from its upper directory, as
    /// containers/storage's `OverlayChanges` computes them, with lowers looked up as overlayfs
    /// merges them (whiteouts and opaque directories in the lowers hide what is below them).
    ///
    /// - A whiteout (character device 0/0) is `.delete`.
    /// - A path the lowers do not show is `.add`; one they show is `.modify`, except a directory
    ///   whose size, mode and mtime equal the lower directory's, which is left out.
    /// - An opaque directory (`trusted.overlay.opaque=y`) is `.modify` when the lowers show
    ///   something at its path and `.add` otherwise; every path the lowers show below it that the
    ///   upper directory does not hold is `.delete` (the topmost such path only: deleting a
    ///   directory deletes its contents), and paths below it are compared with the lowers as usual.
    /// - The parent directories of every `.add` and `.delete` are listed (as `.modify` unless
    ///   already listed), so that an export restores their metadata.
    ///
    /// - Parameters:
    ///   - layer: the layer's `diff` directory (the overlay upper directory).
    ///   - lowers: the lower diff directories, uppermost first.
    /// - Returns: the changes sorted by path; paths are absolute (`/etc/passwd`).
    public static func overlayChanges(layer: FilePath, lowers: [FilePath]) throws(StorageError) -> [Change] {
        let root: FileDescriptor = try attempt("compute layer changes", layer) { () throws(Errno) in
            try FileDescriptor.openDirectory(layer)
        }
        defer { root.closeQuietly() }
        var walk = OverlayChangeWalk()
        try walk.directory(root, path: [], lowers: try LowerView.roots(lowers), opaque: false)
        return walk.result()
    }

    /// The size of what an overlay layer adds and modifies: the sizes of its files (all but
    /// directories; a symlink's is the length of its target) that are `.add` or `.modify` in
    /// `overlayChanges(layer:lowers:)`, a file with several links counted once
    /// (containers/storage's `ChangesSize`).
    ///
    /// Every entry of an overlay upper directory but a directory is an addition, a modification
    /// or a whiteout (size 0), so this is the size of the files in `layer` itself; the lowers are
    /// not read. Measured by ``TreeSize`` with one `fstatat` per entry.
    public static func diffSize(layer: FilePath, lowers: [FilePath]) throws(StorageError) -> Int64 {
        return try attempt("compute diff size", layer) { () throws(Errno) in
            let dir = try FileDescriptor.openDirectory(layer)
            defer { dir.closeQuietly() }
            return try TreeSize.measure(dir, directorySizes: false).bytes
        }
    }

    /// The size of the files but directories among `changes` (`.add`/`.modify`) as found in
    /// `root`, a file with several links counted once. Paths that vanished are not counted.
    public static func size(of changes: [Change], in root: FilePath) throws(StorageError) -> Int64 {
        let rootFD: FileDescriptor = try attempt("compute diff size", root) { () throws(Errno) in
            try FileDescriptor.openDirectory(root)
        }
        defer { rootFD.closeQuietly() }
        var seen = Set<[UInt64]>()
        var total: Int64 = 0
        for change in changes where change.kind != .delete {
            let relative = change.path.drop(while: { $0 == "/" })
            if relative.isEmpty { continue }
            let status: FileStatus
            do throws(Errno) {
                let fd = try rootFD.open(at: FilePath(String(relative)), flags: pathOnly | O_NOFOLLOW, resolve: [.beneath, .noSymlinks])
                defer { fd.closeQuietly() }
                status = try fd.status()
            } catch .noSuchFileOrDirectory {
                continue
            } catch .tooManySymbolicLinkLevels {
                // The last component is a symlink (RESOLVE_NO_SYMLINKS refuses it): counted at
                // its lstat size, the length of its target, as containers/storage counts it.
                guard let link = symlinkStatus(relative, in: rootFD) else { continue }
                status = link
            } catch {
                throw StorageError("compute diff size", path: change.path, errno: error)
            }
            // Every file but a directory counts (symlinks by their target's length, devices
            // and FIFOs as 0), as in containers/storage's ChangesSize.
            guard status.kind != .directory else { continue }
            if status.linkCount > 1, !seen.insert([status.device, status.inode]).inserted { continue }
            total += status.size
        }
        return total
    }
}

/// The status of the symlink at `relative` below `root`, its parent resolved without symlinks;
/// nil when it cannot be reached that way.
private func symlinkStatus(_ relative: Substring, in root: FileDescriptor) -> FileStatus? {
    let path = FilePath(String(relative))
    guard let name = path.lastComponent else { return nil }
    let parentPath = path.removingLastComponent()
    guard let parent = parentPath.isEmpty ? nil : try? root.open(
        at: parentPath, flags: pathOnly | O_DIRECTORY | O_NOFOLLOW, resolve: [.beneath, .noSymlinks])
    else {
        return parentPath.isEmpty ? try? root.status(at: FilePath(root: nil, [name])) : nil
    }
    defer { parent.closeQuietly() }
    return try? parent.status(at: FilePath(root: nil, [name]))
}

/// `O_PATH` (Glibc does not export it to Swift): a descriptor only for fstat and *at calls.
let pathOnly: Int32 = 0o10000000

/// The depth-first walk behind `LayerChanges.overlayChanges`.
struct OverlayChangeWalk {
    private var changes: [String: Change.Kind] = [:]

    func result() -> [Change] {
        changes.map { Change(path: $0.key, kind: $0.value) }.sorted()
    }

    /// Records `kind` for `path`; for `.add` and `.delete`, lists the parents too.
    private mutating func record(_ path: [UInt8], _ kind: Change.Kind) {
        changes[absolute(path)] = kind
        guard kind != .modify else { return }
        var end = path.count
        while let slash = path[..<end].lastIndex(of: UInt8(ascii: "/")) {
            let parent = absolute(Array(path[..<slash]))
            if changes[parent] == nil { changes[parent] = .modify }
            end = slash
        }
    }

    private func absolute(_ path: [UInt8]) -> String { "/" + String(decoding: path, as: UTF8.self) }

    /// Walks the upper directory `directory` at `path`, with `lowers` the lower view there;
    /// `opaque` when an opaque directory above (or this one) hides the lowers.
    mutating func directory(_ directory: FileDescriptor, path: [UInt8], lowers: LowerView, opaque: Bool) throws(StorageError) {
        let listing = try DirectoryListing(reading: directory, path: absolute(path))
        if opaque {
            try recordHiddenDeletions(lowers, listing: listing, path: path)
        }
        for index in 0..<listing.count {
            try listing.withName(index) { name, length throws(StorageError) in
                var childPath = path
                if !childPath.isEmpty { childPath.append(UInt8(ascii: "/")) }
                childPath.append(contentsOf: UnsafeRawBufferPointer(start: name, count: length))
                let status: FileStatus
                do throws(Errno) { status = try directory.status(atRawName: name) } catch .noSuchFileOrDirectory {
                    return
                } catch {
                    throw StorageError("compute layer changes", path: absolute(childPath), errno: error)
                }
                if status.isOverlayWhiteout {
                    record(childPath, .delete)
                    return
                }
                let below = try lowers.lookup(name, path: absolute(childPath))
                guard status.kind == .directory else {
                    record(childPath, below == nil ? .add : .modify)
                    return
                }
                let (child, childOpaque): (FileDescriptor, Bool) = try attempt("compute layer changes", absolute(childPath)) { () throws(Errno) in
                    let child = try directory.open(atRawName: name, flags: O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
                    return (child, try LowerView.isOpaque(child))
                }
                defer { child.closeQuietly() }
                if let below {
                    let same = below.status.kind == .directory && !childOpaque
                        && below.status.size == status.size
                        && below.status.mode == status.mode
                        && below.status.modificationTime == status.modificationTime
                    if !same { record(childPath, .modify) }
                } else {
                    record(childPath, .add)
                }
                let inside = below?.inside ?? LowerView(directories: [])
                try self.directory(child, path: childPath, lowers: inside, opaque: opaque || childOpaque)
            }
        }
    }

    /// Below an opaque directory, every name the lowers show that the upper directory lacks is
    /// deleted.
    private mutating func recordHiddenDeletions(_ lowers: LowerView, listing: DirectoryListing, path: [UInt8]) throws(StorageError) {
        var seen = Set<[UInt8]>()
        for lower in lowers.directories {
            let names = try DirectoryListing(reading: lower, path: absolute(path))
            for index in 0..<names.count {
                let hidden: Bool = names.withName(index) { name, length in !listing.contains(name, length: length) }
                guard hidden else { continue }
                let bytes = Array(names.nameBytes(index))
                guard !seen.contains(bytes) else { continue }
                seen.insert(bytes)
                // Only what the lower stack really shows: not a whiteout, not hidden higher up.
                let visible = try names.withName(index) { name, _ throws(StorageError) in
                    try lowers.lookup(name, path: absolute(path)) != nil
                }
                guard visible else { continue }
                var childPath = path
                if !childPath.isEmpty { childPath.append(UInt8(ascii: "/")) }
                childPath.append(contentsOf: bytes)
                record(childPath, .delete)
            }
        }
    }
}
