import CLinux
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A filesystem context from `fsopen(2)`: configure it key by key, then create a detached mount
/// and attach it. Unlike `mount(2)`'s one-page data string, each key is its own call, so an
/// overlay can take as many `lowerdir+` layers as the kernel allows.
public struct FileSystemContext: ~Copyable {
    /// The context's descriptor.
    public let descriptor: FileDescriptor

    /// Opens a context for a filesystem type (`"overlay"`).
    ///
    /// The corresponding C function is `fsopen`.
    public init(type: String) throws(Errno) {
        let fd = try syscall { strata_fsopen(type, STRATA_FSOPEN_CLOEXEC) }
        descriptor = FileDescriptor(rawValue: fd)
    }

    deinit { descriptor.closeQuietly() }

    /// Sets a string option (`lowerdir+`, `upperdir`, `context`…).
    ///
    /// The corresponding C function is `fsconfig` with `FSCONFIG_SET_STRING`.
    public func set(_ key: String, _ value: String) throws(Errno) {
        try voidSyscall { strata_fsconfig(descriptor.rawValue, STRATA_FSCONFIG_SET_STRING, key, value, 0) }
    }

    /// Sets a flag option (`ro`, `volatile`…).
    ///
    /// The corresponding C function is `fsconfig` with `FSCONFIG_SET_FLAG`.
    public func set(flag key: String) throws(Errno) {
        try voidSyscall { strata_fsconfig(descriptor.rawValue, STRATA_FSCONFIG_SET_FLAG, key, nil, 0) }
    }

    /// Creates the superblock from the options set so far.
    ///
    /// The corresponding C function is `fsconfig` with `FSCONFIG_CMD_CREATE`.
    public func create() throws(Errno) {
        try voidSyscall { strata_fsconfig(descriptor.rawValue, STRATA_FSCONFIG_CMD_CREATE, nil, nil, 0) }
    }

    /// Makes a detached mount of the created filesystem; the caller owns the returned descriptor.
    ///
    /// The corresponding C function is `fsmount`.
    public func mount(readOnly: Bool = false) throws(Errno) -> FileDescriptor {
        let attrs = readOnly ? UInt32(STRATA_MOUNT_ATTR_RDONLY) : 0
        let fd = try syscall { strata_fsmount(descriptor.rawValue, STRATA_FSMOUNT_CLOEXEC, attrs) }
        return FileDescriptor(rawValue: fd)
    }
}

extension FileDescriptor {
    /// Attaches the detached mount this descriptor holds at `target`.
    ///
    /// The corresponding C function is `move_mount` with `MOVE_MOUNT_F_EMPTY_PATH`.
    public func moveMount(to target: FilePath, relativeTo directory: FileDescriptor = .currentWorkingDirectory) throws(Errno) {
        try target.withCPath { t throws(Errno) in
            try voidSyscall {
                strata_move_mount(rawValue, "", directory.rawValue, t, STRATA_MOVE_MOUNT_F_EMPTY_PATH)
            }
        }
    }

    /// Clones the mount at `path` into a detached mount (for idmapping before attaching it).
    ///
    /// The corresponding C function is `open_tree` with `OPEN_TREE_CLONE`.
    public static func cloneMount(_ path: FilePath, recursive: Bool = false) throws(Errno) -> FileDescriptor {
        let flags = STRATA_OPEN_TREE_CLONE | STRATA_OPEN_TREE_CLOEXEC | (recursive ? STRATA_AT_RECURSIVE : 0)
        let fd = try path.withCPath { p throws(Errno) in
            try syscall { strata_open_tree(AT_FDCWD, p, flags) }
        }
        return FileDescriptor(rawValue: fd)
    }

    /// Makes this detached mount show file owners through the user namespace `userNamespace`.
    ///
    /// The corresponding C function is `mount_setattr` with `MOUNT_ATTR_IDMAP`.
    public func setIDMapping(userNamespace: FileDescriptor) throws(Errno) {
        try voidSyscall {
            strata_mount_setattr(rawValue, "", UInt32(STRATA_AT_EMPTY_PATH), STRATA_MOUNT_ATTR_IDMAP, 0, 0,
                                 UInt64(userNamespace.rawValue))
        }
    }
}
