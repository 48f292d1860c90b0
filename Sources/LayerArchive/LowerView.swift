import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// What a stack of lower overlay layers shows at one directory: the directories that merge there,
/// uppermost first, each held open.
///
/// A lookup follows overlayfs: a whiteout (character device 0/0) hides the name in every layer
/// below it, a non-directory hides everything below it, and a directory marked
/// `trusted.overlay.opaque=y` stops the merge at its layer.
final class LowerView {
    /// The merged directories at this path, uppermost first; closed when the view goes away.
    let directories: [FileDescriptor]

    init(directories: [FileDescriptor]) { self.directories = directories }

    deinit { for directory in directories { directory.closeQuietly() } }

    /// Opens the roots of `lowers` (diff directories, uppermost first).
    static func roots(_ lowers: [FilePath]) throws(StorageError) -> LowerView {
        var opened: [FileDescriptor] = []
        for lower in lowers {
            do throws(Errno) {
                opened.append(try FileDescriptor.openDirectory(lower))
            } catch {
                for fd in opened { fd.closeQuietly() }
                throw StorageError("open lower layer", path: lower.string, errno: error)
            }
        }
        return LowerView(directories: opened)
    }

    /// What the lowers show at `name` in this directory: the status of the topmost visible
    /// entry, and when it is a directory, the view inside it. `nil` when nothing is visible.
    func lookup(_ name: UnsafePointer<CChar>, path: @autoclosure () -> String) throws(StorageError) -> (status: FileStatus, inside: LowerView?)? {
        var first: FileStatus?
        var inside: [FileDescriptor] = []
        for directory in directories {
            let status: FileStatus
            do throws(Errno) {
                status = try directory.status(atRawName: name)
            } catch .noSuchFileOrDirectory {
                continue
            } catch .notDirectory {
                continue
            } catch {
                for fd in inside { fd.closeQuietly() }
                throw StorageError("look up in lower layers", path: path(), errno: error)
            }
            if status.isOverlayWhiteout { break }
            if first == nil { first = status }
            guard first!.kind == .directory, status.kind == .directory else { break }
            do throws(Errno) {
                let child = try directory.open(atRawName: name, flags: O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
                inside.append(child)
                if try LowerView.isOpaque(child) { break }
            } catch {
                for fd in inside { fd.closeQuietly() }
                throw StorageError("look up in lower layers", path: path(), errno: error)
            }
        }
        guard let first else { return nil }
        if first.kind == .directory { return (first, LowerView(directories: inside)) }
        for fd in inside { fd.closeQuietly() }
        return (first, nil)
    }

    /// Follows `relativePath` (`a/b/c`, bytes) down from this view; `nil` when the lowers show
    /// nothing there.
    func resolve(_ relativePath: some Collection<UInt8>) throws(StorageError) -> (status: FileStatus, inside: LowerView?)? {
        var view = self
        var found: (status: FileStatus, inside: LowerView?)?
        for component in relativePath.split(separator: UInt8(ascii: "/")) {
            var name = Array(component).map { CChar(bitPattern: $0) }
            name.append(0)
            found = try name.withUnsafeBufferPointer { n throws(StorageError) in
                try view.lookup(n.baseAddress!, path: String(decoding: relativePath, as: UTF8.self))
            }
            guard let inside = found?.inside else {
                // Either nothing is there, or a non-directory: it must be the last component.
                return component.endIndex == relativePath.endIndex ? found : nil
            }
            view = inside
        }
        return found
    }

    /// Whether the open directory carries `trusted.overlay.opaque=y` (or `user.overlay.opaque=y`,
    /// which overlayfs mounted with `userxattr` writes).
    static func isOpaque(_ directory: FileDescriptor) throws(Errno) -> Bool {
        for name in ["trusted.overlay.opaque", "user.overlay.opaque"] {
            var value: (UInt8, UInt8) = (0, 0)
            let length = try withUnsafeMutableBytes(of: &value) { buffer throws(Errno) in
                do throws(Errno) {
                    return try directory.extendedAttribute(rawName: name, into: buffer)
                } catch Errno(rawValue: ERANGE) {
                    return 2
                }
            }
            if length == 1 && value.0 == UInt8(ascii: "y") { return true }
        }
        return false
    }
}
