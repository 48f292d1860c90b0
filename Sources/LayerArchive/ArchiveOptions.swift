import GraphDriver
import StreamCodecs
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// How whiteouts (deleted paths) are written in a layer directory.
public enum WhiteoutFormat: Sendable, Hashable {
    /// Overlayfs: a deleted name is a character device 0/0, an opaque directory carries
    /// `trusted.overlay.opaque=y`.
    case overlay
    /// AUFS/OCI: whiteouts stay files named `.wh.NAME` and `.wh..wh..opq`.
    case aufs
}

/// What `LayerApplier` does with a tar stream.
public struct ApplyOptions: Sendable {
    /// Container IDs in the stream become host IDs through this mapping.
    public var idMappings: IDMappings
    /// How whiteouts in the stream are written to disk.
    public var whiteoutFormat: WhiteoutFormat
    /// Keep going (owner left as the applier's) when `chown` fails with EPERM or EINVAL.
    public var ignoreChownErrors: Bool
    /// When set, every file is written with these permissions (directories get them with the
    /// search bits they need) and its real owner, mode and type are kept in the
    /// `user.containers.override_stat` xattr as `uid:gid:mode:type`. Device nodes and FIFOs are
    /// then written as empty regular files that the xattr describes.
    public var forceMask: FilePermissions?
    /// How many threads finish small files while the stream is read (0: the reader writes
    /// every file itself).
    public var writerThreads: Int

    /// One writer per processor besides the reader's, at least one and at most four.
    ///
    /// Measured here (2 cores; ext4 on a loop file; 100,000 files of 1–4 KiB): with the second
    /// core free, GNU tar 2.73–2.84 s, one writer 2.52–2.54 s, inline 2.90–3.08 s; with the
    /// machine loaded by other builds (load 3.7), tar 3.0–3.2 s, one writer 3.3–3.4 s, inline
    /// 3.1–3.4 s, two writers 3.7–4.1 s. The reader creates every file itself, so more writers
    /// than free cores only compete with it.
    public static var defaultWriterThreads: Int {
        let processors = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return min(max(1, processors - 1), 4)
    }

    public init(
        idMappings: IDMappings = .identity, whiteoutFormat: WhiteoutFormat = .overlay,
        ignoreChownErrors: Bool = false, forceMask: FilePermissions? = nil, writerThreads: Int = ApplyOptions.defaultWriterThreads
    ) {
        self.idMappings = idMappings
        self.whiteoutFormat = whiteoutFormat
        self.ignoreChownErrors = ignoreChownErrors
        self.forceMask = forceMask
        self.writerThreads = writerThreads
    }
}

/// What applying a stream did.
public struct ApplyResult: Sendable, Hashable {
    /// The bytes of file content written (the size containers/storage reports for a layer).
    public var size: Int64
    /// The number of entries read from the stream.
    public var entries: Int
}

/// What an export does with a host ID that has no container ID under its mapping.
public enum UnmappedExportIDPolicy: Sendable, Hashable {
    /// Fail the export, naming the file (the default).
    case fail
    /// Write the given overflow IDs, as a user namespace shows such an owner (`ls -ln` in the
    /// container shows 65534), for owners and named ACL entries. A v3 capability whose root
    /// has no container ID still fails: the kernel does not apply it in the container either,
    /// and no other root may be given it.
    case useOverflowID(uid: UInt32, gid: UInt32)
}

/// What `LayerExporter` writes.
public struct ExportOptions: Sendable {
    /// Host IDs on disk become container IDs in the stream through this mapping.
    public var idMappings: IDMappings
    /// How whiteouts are found on disk.
    public var whiteoutFormat: WhiteoutFormat
    /// The compression of the output stream.
    public var compression: StreamCompression
    /// What a host ID without a container ID becomes.
    public var unmappedIDs: UnmappedExportIDPolicy

    public init(idMappings: IDMappings = .identity, whiteoutFormat: WhiteoutFormat = .overlay,
                compression: StreamCompression = .none, unmappedIDs: UnmappedExportIDPolicy = .fail) {
        self.idMappings = idMappings
        self.whiteoutFormat = whiteoutFormat
        self.compression = compression
        self.unmappedIDs = unmappedIDs
    }

    /// The container IDs of a host owner, or the overflow IDs when the policy gives them.
    func containerOwner(uid: UInt32, gid: UInt32) -> (uid: UInt32, gid: UInt32)? {
        let user = IDMappings.containerID(uid, idMappings.uidMap)
        let group = IDMappings.containerID(gid, idMappings.gidMap)
        if idMappings.uidMap.isEmpty && idMappings.gidMap.isEmpty { return (uid, gid) }
        if case .useOverflowID(let overflowUID, let overflowGID) = unmappedIDs {
            return (user ?? overflowUID, group ?? overflowGID)
        }
        guard let user, let group else { return nil }
        return (user, group)
    }
}
