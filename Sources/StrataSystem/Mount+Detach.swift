import SystemPackage

extension Mounts {
    /// Unmounts `target`; when it is busy, detaches it instead (the kernel finishes the unmount
    /// once the last user lets go). A target that is not mounted is not an error.
    ///
    /// Callers that delete the tree below `target` afterwards rely on the mount being gone
    /// from the path either way. The corresponding C function is `umount2`.
    public static func unmountOrDetach(_ target: FilePath) throws(Errno) {
        do throws(Errno) {
            try unmount(target)
        } catch .resourceBusy {
            try unmount(target, flags: .detach)
        } catch .invalidArgument {
            // Not a mount point (any more).
        }
    }
}
