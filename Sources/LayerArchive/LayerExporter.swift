import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Writes layer tar streams: the `diff` side of the driver.
///
/// The stream is a PAX tar, in the layout containers/storage produces: paths relative to the
/// layer root without a leading `./` (directories end in `/`, the root itself is not an entry),
/// entries sorted by name with every directory before its contents, owners mapped from host to
/// container IDs, sub-second mtimes kept, sockets left out. Deleted paths are AUFS/OCI
/// whiteouts (`.wh.NAME`, an empty file with mode 0) and an opaque directory that hides a lower
/// one is followed by `.wh..wh..opq`.
///
/// Exported xattrs: `security.capability` (a v3 capability whose root ID is the container's
/// root is written as v2; one of another namespace keeps v3 with its root ID mapped), `security.ima`, `user.*` except `user.overlay.*`, and the POSIX ACLs
/// `system.posix_acl_access`/`system.posix_acl_default` in their binary kernel form with the
/// IDs of named entries mapped. All are `SCHILY.xattr.NAME` records, which GNU tar writes
/// with `--xattrs` and restores with `--xattrs --xattrs-include='*'`. `trusted.overlay.*` is
/// never exported; `user.containers.override_stat` replaces the on-disk owner and mode and is
/// not exported itself.
public enum LayerExporter {
    /// Writes the tar of one overlay layer to `output`.
    ///
    /// - Parameters:
    ///   - layer: the layer's `diff` directory (the overlay upper directory).
    ///   - lowers: the diff directories of the layers below, uppermost first; only used to decide
    ///     whether an opaque directory needs a `.wh..wh..opq` marker (it does only when the
    ///     lowers show a directory at the same path; a fresh directory needs none).
    ///   - output: where the stream goes; not closed.
    ///   - options: ID mapping, how whiteouts are stored on disk, compression.
    /// - Returns: the number of bytes written to `output` (after compression).
    /// - Throws: `StorageError` naming the file when a file cannot be read, when its owner or an
    ///   ACL entry has no container ID under `options.idMappings`, or when writing fails.
    @discardableResult
    public static func export(layer: FilePath, lowers: [FilePath], to output: FileDescriptor, options: ExportOptions) throws(StorageError) -> Int64 {
        let root: FileDescriptor = try attempt("export layer", layer) { () throws(Errno) in
            try FileDescriptor.openDirectory(layer)
        }
        defer { root.closeQuietly() }
        let lowerView: LowerView? = lowers.isEmpty || options.whiteoutFormat != .overlay ? nil : try LowerView.roots(lowers)
        let writer = try ArchiveWriter(output: output, compression: options.compression)
        let session = ExportSession(writer: writer, options: options, lowers: lowerView)
        try walk(root, session: session)
        return try writer.finish()
    }

    /// Writes the tar of the listed changes, read from `root` (a merged or complete tree), to
    /// `output`: used when the layer's parent is not the layer below it in the store.
    ///
    /// Changes are written in path order. `.add` and `.modify` paths are written as they are in
    /// `root` (a directory without its contents: its children are written only when listed);
    /// `.delete` paths become `.wh.NAME` entries (empty, mode 0, owner 0:0, mtime 0). A listed
    /// path that no longer exists in `root` is left out, as containers/storage does for a
    /// container that changes while it is exported.
    ///
    /// - Returns: the number of bytes written to `output` (after compression).
    @discardableResult
    public static func export(changes: [Change], root: FilePath, to output: FileDescriptor, options: ExportOptions) throws(StorageError) -> Int64 {
        let rootFD: FileDescriptor = try attempt("export changes", root) { () throws(Errno) in
            try FileDescriptor.openDirectory(root)
        }
        defer { rootFD.closeQuietly() }
        let writer = try ArchiveWriter(output: output, compression: options.compression)
        let session = ExportSession(writer: writer, options: options, lowers: nil)
        var parents = ParentDirectoryCache(root: rootFD)
        defer { parents.close() }

        for change in changes.sorted() {
            var bytes = Array(change.path.utf8)
            while bytes.first == UInt8(ascii: "/") { bytes.removeFirst() }
            while bytes.last == UInt8(ascii: "/") { bytes.removeLast() }
            if bytes.isEmpty { continue }
            session.path = bytes
            if change.kind == .delete {
                try session.writeDeletion()
                continue
            }
            let slash = bytes.lastIndex(of: UInt8(ascii: "/"))
            let parentPath = slash.map { Array(bytes[..<$0]) } ?? []
            guard let parent = try parents.directory(parentPath, change: change) else { continue }
            var name = Array(bytes[(slash.map { $0 + 1 } ?? 0)...]).map { CChar(bitPattern: $0) }
            name.append(0)
            _ = try name.withUnsafeBufferPointer { n throws(StorageError) in
                try session.writeEntry(parent: parent, name: n.baseAddress!, kind: .unknown, descend: false)
            }
        }
        return try writer.finish()
    }

    /// Writes the entries below `directory` (sorted, depth first) and walks into subdirectories.
    static func walk(_ directory: FileDescriptor, session: ExportSession) throws(StorageError) {
        let listing = try DirectoryListing(reading: directory, path: session.pathDescription)
        let base = session.path.count
        let aufs = session.options.whiteoutFormat == .aufs
        for index in 0..<listing.count {
            try listing.withName(index) { name, length throws(StorageError) in
                session.path.removeSubrange(base...)
                session.path.append(contentsOf: UnsafeRawBufferPointer(start: name, count: length))
                if aufs && isAufsMetadata(name, length: length) { return }
                guard let child = try session.writeEntry(parent: directory, name: name, kind: listing.kind(index), descend: true) else {
                    return
                }
                defer { child.closeQuietly() }
                session.path.append(UInt8(ascii: "/"))
                try walk(child, session: session)
            }
        }
        session.path.removeSubrange(base...)
    }

    /// AUFS keeps bookkeeping under `.wh..wh.*` (hard-link directory, `.wh..wh.aufs`); only the
    /// opaque marker `.wh..wh..opq` belongs in a layer tar.
    private static func isAufsMetadata(_ name: UnsafePointer<CChar>, length: Int) -> Bool {
        guard length >= Whiteout.metaPrefix.count,
              memcmp(name, Whiteout.metaPrefix, Whiteout.metaPrefix.count) == 0 else { return false }
        return !(length == Whiteout.opaqueMarker.count && memcmp(name, Whiteout.opaqueMarker, length) == 0)
    }
}

/// Keeps the parent directory of the previous change open: a sorted change list visits the
/// children of a directory one after another, so each directory is opened about once.
struct ParentDirectoryCache {
    let root: FileDescriptor
    private var openPath: [UInt8]?
    private var openDirectory: FileDescriptor?

    init(root: FileDescriptor) { self.root = root }

    /// The open directory at `path` (bytes, relative); `nil` when it does not exist. Opened with
    /// `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`: no component may be a symlink.
    mutating func directory(_ path: [UInt8], change: Change) throws(StorageError) -> FileDescriptor? {
        if path.isEmpty { return root }
        if path == openPath, let openDirectory { return openDirectory }
        close()
        do throws(Errno) {
            let fd = try root.open(
                at: FilePath(String(decoding: path, as: UTF8.self)), flags: O_RDONLY | O_DIRECTORY,
                resolve: [.beneath, .noSymlinks])
            openPath = path
            openDirectory = fd
            return fd
        } catch .noSuchFileOrDirectory {
            return nil
        } catch .notDirectory {
            return nil
        } catch {
            throw StorageError("export changes: open parent directory", path: change.path, errno: error)
        }
    }

    /// Closes the cached directory.
    mutating func close() {
        openDirectory?.closeQuietly()
        openDirectory = nil
        openPath = nil
    }
}
