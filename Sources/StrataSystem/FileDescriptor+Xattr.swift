import CAttr
import CLinux
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Extended attributes, read and written either on an open descriptor or on a path relative to a
/// directory descriptor without following a symlink in its last component.
///
/// A path-based call goes through `/proc/self/fd/<dir>/<name>` so that it stays anchored on the
/// directory descriptor: no component above the directory is looked up again. An empty path names
/// the descriptor's own file: that call follows the `/proc/self/fd/<dir>` magic link (an `l*xattr`
/// call would act on the link itself), which also works for an `O_PATH` descriptor.
extension FileDescriptor {
    /// The path the `l*xattr` calls get for `name` inside this directory, NUL-terminated and byte
    /// for byte: `/proc/self/fd/<dir>/<name>` (`/proc/self/fd/<dir>` for an empty name). As with
    /// the `*at` calls, an absolute name, or a name relative to the working directory
    /// (`currentWorkingDirectory`), is taken as it is.
    @usableFromInline
    func anchoredPath(_ name: FilePath) -> [CChar] {
        name.withPlatformString { anchoredPath(rawName: $0) }
    }

    /// `anchoredPath` for a NUL-terminated name.
    func anchoredPath(rawName name: UnsafePointer<CChar>) -> [CChar] {
        let length = strlen(name)
        let bytes = UnsafeBufferPointer(start: name, count: length)
        if name[0] == 0x2F || rawValue == AT_FDCWD {
            return length == 0 ? Array(".".utf8CString) : Array(bytes) + [0]
        }
        var path = Array("/proc/self/fd/\(rawValue)".utf8CString.dropLast())
        if length > 0 {
            path.append(0x2F)
            path.append(contentsOf: bytes)
        }
        path.append(0)
        return path
    }

    /// Reads an extended attribute of the open file; `nil` when it has none of that name.
    ///
    /// The corresponding C function is `fgetxattr`.
    public func extendedAttribute(_ name: String) throws(Errno) -> [UInt8]? {
        try readAttribute { buffer, size in fgetxattr(rawValue, name, buffer, size) }
    }

    /// Reads an extended attribute of `path` (of a symlink itself); `nil` when absent.
    ///
    /// The corresponding C function is `lgetxattr`.
    public func extendedAttribute(_ name: String, at path: FilePath) throws(Errno) -> [UInt8]? {
        let full = anchoredPath(path)
        let follow = path.isEmpty
        return try readAttribute { buffer, size in
            follow ? getxattr(full, name, buffer, size) : lgetxattr(full, name, buffer, size)
        }
    }

    /// Sets an extended attribute of the open file.
    ///
    /// The corresponding C function is `fsetxattr`.
    public func setExtendedAttribute(_ name: String, _ value: [UInt8]) throws(Errno) {
        _ = try value.withUnsafeBytes { b in
            valueOrErrno { fsetxattr(rawValue, name, b.baseAddress, b.count, 0) }
        }.get()
    }

    /// Sets an extended attribute of `path` (of a symlink itself).
    ///
    /// The corresponding C function is `lsetxattr`.
    public func setExtendedAttribute(_ name: String, _ value: [UInt8], at path: FilePath) throws(Errno) {
        let full = anchoredPath(path)
        let follow = path.isEmpty
        _ = try value.withUnsafeBytes { b in
            valueOrErrno {
                follow ? setxattr(full, name, b.baseAddress, b.count, 0)
                    : lsetxattr(full, name, b.baseAddress, b.count, 0)
            }
        }.get()
    }

    /// Removes an extended attribute of the open file; no error when it was absent.
    ///
    /// The corresponding C function is `fremovexattr`.
    public func removeExtendedAttribute(_ name: String) throws(Errno) {
        do throws(Errno) {
            try voidSyscall { fremovexattr(rawValue, name) }
        } catch .noData {}
    }

    /// Removes an extended attribute of `path`; no error when it was absent.
    ///
    /// The corresponding C function is `lremovexattr`.
    public func removeExtendedAttribute(_ name: String, at path: FilePath) throws(Errno) {
        let full = anchoredPath(path)
        do throws(Errno) {
            try voidSyscall { path.isEmpty ? removexattr(full, name) : lremovexattr(full, name) }
        } catch .noData {}
    }

    /// Lists the names of the open file's extended attributes.
    ///
    /// The corresponding C function is `flistxattr`.
    public func extendedAttributeNames() throws(Errno) -> [String] {
        try listAttributes { buffer, size in flistxattr(rawValue, buffer, size) }
    }

    /// Lists the names of `path`'s extended attributes (of a symlink itself).
    ///
    /// The corresponding C function is `llistxattr`.
    public func extendedAttributeNames(at path: FilePath) throws(Errno) -> [String] {
        let full = anchoredPath(path)
        let follow = path.isEmpty
        return try listAttributes { buffer, size in
            follow ? listxattr(full, buffer, size) : llistxattr(full, buffer, size)
        }
    }

    private func readAttribute(_ call: (UnsafeMutableRawPointer?, Int) -> Int) throws(Errno) -> [UInt8]? {
        var capacity = 256
        while true {
            var buffer = [UInt8](repeating: 0, count: capacity)
            let result = buffer.withUnsafeMutableBytes { b in valueOrErrno { call(b.baseAddress, b.count) } }
            switch result {
            case .success(let n): return Array(buffer[0..<n])
            case .failure(.noData): return nil
            case .failure(Errno(rawValue: ERANGE)):
                // Ask for the size, then try again with room for it.
                let needed = try syscall { call(nil, 0) }
                capacity = max(needed, capacity * 2)
            case .failure(let e): throw e
            }
        }
    }

    private func listAttributes(_ call: (UnsafeMutablePointer<CChar>?, Int) -> Int) throws(Errno) -> [String] {
        var capacity = 1024
        while true {
            var buffer = [CChar](repeating: 0, count: capacity)
            let result = buffer.withUnsafeMutableBufferPointer { b in valueOrErrno { call(b.baseAddress, b.count) } }
            switch result {
            case .success(let n):
                return buffer[0..<n].split(separator: 0).map {
                    String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                }
            case .failure(Errno(rawValue: ERANGE)):
                let needed = try syscall { call(nil, 0) }
                capacity = max(needed, capacity * 2)
            case .failure(.notSupported):
                return []
            case .failure(let e): throw e
            }
        }
    }
}
