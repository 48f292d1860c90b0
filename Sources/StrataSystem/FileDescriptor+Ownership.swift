import CAttr
import CLinux
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Calls for walks that change owners: anchored on a directory descriptor, never following a
/// symlink in the last component, and cheap when a file has no extended attributes.
///
/// The extended-attribute calls use the `*xattrat` system calls (Linux 6.13); on an older kernel
/// they fall back to the `/proc/self/fd/<dir>/<name>` path that `FileDescriptor+Xattr` uses.
/// The first `ENOSYS` of each call is remembered, so later calls go to the fallback at once.
extension FileDescriptor {
    /// Set once the kernel has answered `ENOSYS` to `listxattrat`, `getxattrat` or `setxattrat`.
    private static let noListXattrAt = Atomic<Bool>(false)
    private static let noGetXattrAt = Atomic<Bool>(false)
    private static let noSetXattrAt = Atomic<Bool>(false)

    /// Changes the mode bits of `path` itself, never a symlink's target (setuid and setgid
    /// included). A symlink has no mode bits of its own: the call then fails with `EOPNOTSUPP`.
    ///
    /// The corresponding C function is `fchmodat2` with `AT_SYMLINK_NOFOLLOW`.
    public func changeModeNoFollow(at path: FilePath, permissions: FilePermissions) throws(Errno) {
        try path.withCPath { p throws(Errno) in
            try voidSyscall { strata_fchmodat2(self.rawValue, p, permissions.rawValue, AT_SYMLINK_NOFOLLOW) }
        }
    }

    /// Whether `path` (never a symlink's target) is the root of a mount, a bind mount of the
    /// same filesystem included, which a device number comparison cannot tell.
    ///
    /// The corresponding C function is `statx` with `STATX_ATTR_MOUNT_ROOT`.
    public func isMountRoot(at path: FilePath) throws(Errno) -> Bool {
        try path.withCPath { p throws(Errno) in
            try syscall { strata_is_mount_root(self.rawValue, p) } == 1
        }
    }

    /// Reads `path`'s status (never a symlink's target) and whether it is the root of a mount,
    /// in one system call; `isMountRoot` is `nil` when the kernel does not report it (before
    /// Linux 5.8).
    ///
    /// The corresponding C function is `statx` with `STATX_BASIC_STATS` and `STATX_ATTR_MOUNT_ROOT`.
    public func statusAndMountRoot(at path: FilePath) throws(Errno) -> (status: FileStatus, isMountRoot: Bool?) {
        var st = Glibc.stat()
        var mountRoot: Int32 = -1
        try path.withCPath { p throws(Errno) in
            try voidSyscall { strata_status_and_mount_root(self.rawValue, p, &st, &mountRoot) }
        }
        return (FileStatus(st), mountRoot < 0 ? nil : mountRoot == 1)
    }

    /// Lists the names of `path`'s extended attributes (of a symlink itself); empty when it has
    /// none, in one system call for the common case of a short list.
    ///
    /// The corresponding C function is `listxattrat` with `AT_SYMLINK_NOFOLLOW`.
    public func extendedAttributeNamesNoFollow(at path: FilePath) throws(Errno) -> [String] {
        if Self.noListXattrAt.load(ordering: .relaxed) { return try extendedAttributeNames(at: path) }
        return try path.withCPath { p throws(Errno) -> [String] in
            var capacity = 512
            while true {
                let result: Result<[String], Errno>? = withUnsafeTemporaryAllocation(of: CChar.self, capacity: capacity) {
                    buffer in
                    switch valueOrErrno({ strata_listxattrat(self.rawValue, p, AT_SYMLINK_NOFOLLOW, buffer.baseAddress, capacity) }) {
                    case .success(0): return .success([])
                    case .success(let n):
                        return .success(UnsafeBufferPointer(rebasing: buffer[0..<n]).split(separator: 0).map {
                            String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                        })
                    case .failure(Errno(rawValue: ERANGE)): return nil
                    case .failure(.notSupported): return .success([])
                    case .failure(let e): return .failure(e)
                    }
                }
                switch result {
                case .some(.success(let names)): return names
                case .some(.failure(.noFunction)):
                    Self.noListXattrAt.store(true, ordering: .relaxed)
                    return try extendedAttributeNames(at: path)
                case .some(.failure(let e)): throw e
                case .none:
                    let needed = try syscall { strata_listxattrat(self.rawValue, p, AT_SYMLINK_NOFOLLOW, nil, 0) }
                    capacity = max(needed, capacity * 2)
                }
            }
        }
    }

    /// Reads an extended attribute of `path` (of a symlink itself); `nil` when absent.
    ///
    /// The corresponding C function is `getxattrat` with `AT_SYMLINK_NOFOLLOW`.
    public func extendedAttributeNoFollow(_ name: String, at path: FilePath) throws(Errno) -> [UInt8]? {
        if Self.noGetXattrAt.load(ordering: .relaxed) { return try extendedAttribute(name, at: path) }
        return try path.withCPath { p throws(Errno) -> [UInt8]? in
            var capacity = 256
            while true {
                var buffer = [UInt8](repeating: 0, count: capacity)
                let result = buffer.withUnsafeMutableBytes { b in
                    valueOrErrno { strata_getxattrat(self.rawValue, p, AT_SYMLINK_NOFOLLOW, name, b.baseAddress, b.count) }
                }
                switch result {
                case .success(let n): return Array(buffer[0..<n])
                case .failure(.noData): return nil
                case .failure(.noFunction):
                    Self.noGetXattrAt.store(true, ordering: .relaxed)
                    return try extendedAttribute(name, at: path)
                case .failure(Errno(rawValue: ERANGE)):
                    let needed = try syscall { strata_getxattrat(self.rawValue, p, AT_SYMLINK_NOFOLLOW, name, nil, 0) }
                    capacity = max(needed, capacity * 2)
                case .failure(let e): throw e
                }
            }
        }
    }

    /// Sets an extended attribute of `path` (of a symlink itself).
    ///
    /// The corresponding C function is `setxattrat` with `AT_SYMLINK_NOFOLLOW`.
    public func setExtendedAttributeNoFollow(_ name: String, _ value: [UInt8], at path: FilePath) throws(Errno) {
        if Self.noSetXattrAt.load(ordering: .relaxed) { return try setExtendedAttribute(name, value, at: path) }
        let result: Result<Int32, Errno> = path.withPlatformString { p in
            value.withUnsafeBytes { b in
                valueOrErrno { strata_setxattrat(self.rawValue, p, AT_SYMLINK_NOFOLLOW, name, b.baseAddress, b.count, 0) }
            }
        }
        switch result {
        case .success: return
        case .failure(.noFunction):
            Self.noSetXattrAt.store(true, ordering: .relaxed)
            try setExtendedAttribute(name, value, at: path)
        case .failure(let e): throw e
        }
    }
}
