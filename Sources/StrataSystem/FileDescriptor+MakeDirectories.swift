import SystemPackage

extension FileDescriptor {
    /// Makes the directory `path` (relative to this directory) and every missing parent,
    /// succeeding when it exists already.
    ///
    /// The whole path is tried first, so that the usual case (only the last component is
    /// missing, or none) costs one call; the parents are walked up only on `ENOENT`.
    /// The corresponding C function is `mkdirat`.
    public func makeDirectories(at path: FilePath, permissions: FilePermissions = .init(rawValue: 0o700)) throws(Errno) {
        do throws(Errno) {
            try makeDirectory(at: path, permissions: permissions)
        } catch .fileExists {
        } catch .noSuchFileOrDirectory {
            let parent = path.removingLastComponent()
            guard !parent.isEmpty, parent != path else { throw Errno.noSuchFileOrDirectory }
            try makeDirectories(at: parent, permissions: permissions)
            do throws(Errno) { try makeDirectory(at: path, permissions: permissions) } catch .fileExists {}
        }
    }
}
