import CLinux
import SystemPackage

/// `MOUNT_ATTR_*` flags for a new mount (`fsmount(2)`, `mount_setattr(2)`).
public struct MountAttributes: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let readOnly = MountAttributes(rawValue: 0x0000_0001)
    public static let noSetuid = MountAttributes(rawValue: 0x0000_0002)
    public static let noDevices = MountAttributes(rawValue: 0x0000_0004)
    public static let noExec = MountAttributes(rawValue: 0x0000_0008)
    public static let noAccessTime = MountAttributes(rawValue: 0x0000_0010)
    public static let strictAccessTime = MountAttributes(rawValue: 0x0000_0020)
    public static let noDirectoryAccessTime = MountAttributes(rawValue: 0x0000_0080)
}

extension FileSystemContext {
    /// Makes a detached mount of the created filesystem with these attributes; the caller owns
    /// the returned descriptor.
    ///
    /// The corresponding C function is `fsmount`.
    public func mount(attributes: MountAttributes) throws(Errno) -> FileDescriptor {
        let fd = try syscall { strata_fsmount(descriptor.rawValue, STRATA_FSMOUNT_CLOEXEC, attributes.rawValue) }
        return FileDescriptor(rawValue: fd)
    }
}
