import CArchive
import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Writes one tar entry per file, reading each file through its parent directory's descriptor.
///
/// One session serves a whole export: the buffers, the archive entry and the hard-link table are
/// made once. `path` holds the entry's path inside the layer (`etc/passwd`, bytes, no leading
/// slash); the caller sets it before each `writeEntry`.
final class ExportSession {
    let writer: ArchiveWriter
    let options: ExportOptions
    /// The lower layers, for the opaque-directory rule; `nil` when there are none.
    let lowers: LowerView?
    /// The path of the entry being written.
    var path: [UInt8] = []

    private let data: UnsafeMutableRawBufferPointer
    private let names: UnsafeMutableRawBufferPointer
    private let value: UnsafeMutableRawBufferPointer
    /// The first path of every multiply-linked file seen so far.
    private var hardlinks: [FileIdentity: [UInt8]] = [:]

    /// `O_NOATIME` (Glibc does not export it to Swift): reading does not touch the atime.
    private let noAccessTime: Int32 = 0o1000000

    private struct FileIdentity: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    init(writer: ArchiveWriter, options: ExportOptions, lowers: LowerView?) {
        self.writer = writer
        self.options = options
        self.lowers = lowers
        data = .allocate(byteCount: 1 << 20, alignment: 4096)
        names = .allocate(byteCount: 64 * 1024, alignment: 8)
        value = .allocate(byteCount: 64 * 1024, alignment: 8)
        path.reserveCapacity(4096)
    }

    deinit {
        data.deallocate()
        names.deallocate()
        value.deallocate()
    }

    /// The entry path as text, for error messages.
    var pathDescription: String { "/" + String(decoding: path, as: UTF8.self) }

    /// Writes the entry for `name` in `parent`, whose path inside the layer is `path`.
    ///
    /// Returns the opened directory when the file is a directory and `descend` is true (the
    /// caller walks and closes it). Sockets are skipped; a file that vanished is skipped.
    func writeEntry(
        parent: FileDescriptor, name: UnsafePointer<CChar>, kind hint: FileKind, descend: Bool
    ) throws(StorageError) -> FileDescriptor? {
        var opened: FileDescriptor?
        var status: FileStatus
        do throws(Errno) {
            (opened, status) = try open(parent: parent, name: name, hint: hint)
        } catch .noSuchFileOrDirectory {
            return nil
        } catch {
            throw StorageError("export layer: read", path: pathDescription, errno: error)
        }
        var keepOpen = false
        defer { if !keepOpen { opened?.closeQuietly() } }

        var kind = status.kind
        if kind == .socket { return nil }
        if kind == .characterDevice && status.specialDevice == 0 && options.whiteoutFormat == .overlay {
            try writeWhiteout(status)
            return nil
        }

        let entry = writer.header
        entry.clear()
        var permissions = UInt32(status.mode & 0o7777)
        var deviceMajor = status.deviceMajor, deviceMinor = status.deviceMinor
        var uid = status.userID.rawValue
        var gid = status.groupID.rawValue
        var opaque = false
        var metacopy = false
        var redirect: [UInt8]?

        if kind == .regular && status.linkCount > 1 {
            let identity = FileIdentity(device: status.device, inode: status.inode)
            if let target = hardlinks[identity] {
                try setOwner(uid: uid, gid: gid)
                try writeHardLink(to: target, status: status)
                return nil
            }
            hardlinks[identity] = path
        }

        // Extended attributes: read through the open descriptor where there is one.
        let listLength = try readAttributeNames(opened: opened, parent: parent, name: name)
        var offset = 0
        while offset < listLength {
            let attribute = (names.baseAddress! + offset).assumingMemoryBound(to: CChar.self)
            offset += strlen(attribute) + 1
            let role = ExportAttribute.classify(attribute)
            if case .skipped = role { continue }
            guard var length = try readAttribute(attribute, opened: opened, parent: parent, name: name) else { continue }
            let bytes = UnsafeMutableRawBufferPointer(rebasing: value[0..<length])
            switch role {
            case .capability:
                guard let exported = FileCapability.exported(bytes, mappings: options.idMappings) else {
                    throw StorageError(.invalidArgument, "export layer", path: pathDescription, reason:
                        "its v3 file capability belongs to a user namespace whose root has no ID in the container's mapping")
                }
                length = exported
            case .accessControlList:
                if let failed = PosixACL.mapToContainer(bytes, options.idMappings, unmapped: options.unmappedIDs) {
                    throw StorageError(.invalidArgument, "export layer", path: pathDescription, reason:
                        "its ACL names \(failed.user ? "user" : "group") \(failed.id), which has no ID in the container's mapping")
                }
                addAccessControlList(bytes, isDefault: strcmp(attribute, "system.posix_acl_default") == 0)
            case .overrideStat:
                if let override = OverrideStat(parsing: UnsafeRawBufferPointer(bytes)) {
                    uid = override.uid
                    gid = override.gid
                    permissions = override.permissions
                    // Under force_mask a device node or FIFO is stored as an empty regular file
                    // that override_stat describes: export what it stands for.
                    if kind == .regular && status.size == 0
                        && [.characterDevice, .blockDevice, .fifo].contains(override.kind) {
                        kind = override.kind
                        deviceMajor = override.deviceMajor
                        deviceMinor = override.deviceMinor
                    }
                }
                continue
            case .overlayOpaque:
                opaque = kind == .directory && length == 1 && bytes[0] == UInt8(ascii: "y")
                continue
            case .metacopy:
                // Overlayfs copied up only the metadata (a chown or chmod on a metacopy mount):
                // the data is read from the lower layer that holds it.
                metacopy = kind == .regular
                continue
            case .redirect:
                redirect = Array(UnsafeRawBufferPointer(bytes))
                continue
            case .verbatim, .skipped:
                break
            }
            entry.addXattr(attribute, value.baseAddress, length)
        }

        try setOwner(uid: uid, gid: gid)
        entry.setPermissions(mode_t(permissions))
        entry.setModificationTime(Int(status.modificationTime.seconds), Int(status.modificationTime.nanoseconds))

        switch kind {
        case .directory:
            path.append(UInt8(ascii: "/"))
            setPathname()
            path.removeLast()
            entry.setFileType(S_IFDIR)
            try writer.writeHeader(path: pathDescription)
            if opaque && options.whiteoutFormat == .overlay, try existsAsLowerDirectory() {
                try writeOpaqueMarker(status, uid: uid, gid: gid, permissions: permissions)
            }
            keepOpen = descend
            return descend ? opened : nil
        case .regular:
            setPathname()
            entry.setFileType(S_IFREG)
            entry.setSize(status.size)
            if metacopy {
                guard let data = try lowerData(redirect: redirect) else {
                    throw StorageError(.corrupt, "export layer", path: pathDescription, reason:
                        "overlayfs copied up only its metadata (metacopy), and no lower layer holds its data")
                }
                defer { data.closeQuietly() }
                try writer.writeHeader(path: pathDescription)
                try copyContent(of: data, size: status.size)
                return nil
            }
            try writer.writeHeader(path: pathDescription)
            try copyContent(of: opened!, size: status.size)
        case .symlink:
            setPathname()
            entry.setFileType(S_IFLNK)
            let length: Int = try attempt("export layer: read symlink", pathDescription) { () throws(Errno) in
                try parent.readSymbolicLink(atRawName: name, into: UnsafeMutableRawBufferPointer(rebasing: data[0..<(data.count - 1)]))
            }
            data[length] = 0
            entry.copySymlink(data.baseAddress!.assumingMemoryBound(to: CChar.self))
            try writer.writeHeader(path: pathDescription)
        case .characterDevice, .blockDevice, .fifo:
            setPathname()
            entry.setFileType(kind == .fifo ? S_IFIFO : kind == .blockDevice ? S_IFBLK : S_IFCHR)
            if kind != .fifo {
                entry.setDevice(major: dev_t(deviceMajor), minor: dev_t(deviceMinor))
            }
            try writer.writeHeader(path: pathDescription)
        case .socket, .unknown:
            break
        }
        return nil
    }

    // MARK: - Pieces

    /// Opens regular files and directories (their content and xattrs are read through the
    /// descriptor), and only stats everything else: a FIFO or device is never opened.
    private func open(parent: FileDescriptor, name: UnsafePointer<CChar>, hint: FileKind) throws(Errno) -> (FileDescriptor?, FileStatus) {
        if hint == .regular || hint == .directory {
            let flags = hint == .regular
                ? O_RDONLY | O_NOFOLLOW | O_NONBLOCK | noAccessTime
                : O_RDONLY | O_NOFOLLOW | O_DIRECTORY
            do throws(Errno) {
                let fd = try parent.open(atRawName: name, flags: flags)
                do throws(Errno) {
                    return (fd, try fd.status())
                } catch {
                    fd.closeQuietly()
                    throw error
                }
            } catch .tooManySymbolicLinkLevels {
            } catch .notDirectory {
            } catch .notPermitted {
                // noAccessTime needs ownership or CAP_FOWNER: fall back below.
            }
        }
        let status = try parent.status(atRawName: name)
        switch status.kind {
        case .regular:
            let fd = try parent.open(atRawName: name, flags: O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
            return (fd, status)
        case .directory:
            let fd = try parent.open(atRawName: name, flags: O_RDONLY | O_NOFOLLOW | O_DIRECTORY)
            return (fd, status)
        default:
            return (nil, status)
        }
    }

    /// The kernel allocates a buffer of the size it is given for every xattr call: asking with
    /// 64 KiB for each of 100,000 files costs more than the calls themselves. Ask with a small
    /// buffer first and with the whole one only when the answer does not fit.
    private static let firstAttributeBuffer = 1024

    private func readAttributeNames(opened: FileDescriptor?, parent: FileDescriptor, name: UnsafePointer<CChar>) throws(StorageError) -> Int {
        func list(_ buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
            if let opened { return try opened.extendedAttributeNames(into: buffer) }
            return try parent.extendedAttributeNames(atRawName: name, into: buffer)
        }
        return try attempt("export layer: list xattrs", pathDescription) { () throws(Errno) in
            try Self.smallBufferFirst(names, list)
        }
    }

    private func readAttribute(
        _ attribute: UnsafePointer<CChar>, opened: FileDescriptor?, parent: FileDescriptor, name: UnsafePointer<CChar>
    ) throws(StorageError) -> Int? {
        func read(_ buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int? {
            if let opened { return try opened.extendedAttribute(rawName: attribute, into: buffer) }
            return try parent.extendedAttribute(rawName: attribute, atRawName: name, into: buffer)
        }
        return try attempt("export layer: read xattr \(String(cString: attribute))", pathDescription) { () throws(Errno) in
            try Self.smallBufferFirst(value, read)
        }
    }

    /// Calls `body` with the first `firstAttributeBuffer` bytes of `buffer`, and with the whole
    /// buffer only when the answer does not fit (`ERANGE`).
    @inline(__always)
    private static func smallBufferFirst<R>(
        _ buffer: UnsafeMutableRawBufferPointer, _ body: (UnsafeMutableRawBufferPointer) throws(Errno) -> R
    ) throws(Errno) -> R {
        do throws(Errno) {
            return try body(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<firstAttributeBuffer]))
        } catch Errno(rawValue: ERANGE) {
            return try body(buffer)
        }
    }

    /// Adds the ACL also as libarchive ACL entries, which the PAX writer stores as
    /// `SCHILY.acl.access`/`SCHILY.acl.default` text: GNU tar extracting with `--acls` restores
    /// ACLs only from those records, and ignores the `system.posix_acl_*` xattrs.
    private func addAccessControlList(_ value: UnsafeMutableRawBufferPointer, isDefault: Bool) {
        let type = isDefault ? ARCHIVE_ENTRY_ACL_TYPE_DEFAULT : ARCHIVE_ENTRY_ACL_TYPE_ACCESS
        PosixACL.forEachEntry(UnsafeRawBufferPointer(value)) { tag, permissions, id in
            guard let archiveTag = PosixACL.Tag(rawValue: tag)?.archiveTag else { return }
            let hasID = tag == 0x02 || tag == 0x08
            writer.header.addACLEntry(type, Int32(permissions & 0o7), archiveTag, hasID ? Int32(bitPattern: id) : -1)
        }
    }

    /// Sets the entry's owner, mapped from host to container IDs.
    func setOwner(uid: UInt32, gid: UInt32) throws(StorageError) {
        guard let owner = options.containerOwner(uid: uid, gid: gid) else {
            throw StorageError(.invalidArgument, "export layer", path: pathDescription, reason:
                "its owner \(uid):\(gid) has no ID in the container's mapping")
        }
        writer.header.setOwner(uid: owner.uid, gid: owner.gid)
    }

    /// Sets the entry's pathname to `path`, byte for byte.
    func setPathname() {
        path.append(0)
        path.withUnsafeBufferPointer { p in
            writer.header.copyPathname(UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self))
        }
        path.removeLast()
    }

    /// Copies `size` bytes of the file in 1 MiB reads. A file that shrank meanwhile is padded
    /// with zeros by libarchive; one that grew is cut at `size`.
    private func copyContent(of file: FileDescriptor, size: Int64) throws(StorageError) {
        var remaining = size
        while remaining > 0 {
            let want = Int(min(Int64(data.count), remaining))
            let n: Int = try attempt("export layer: read", pathDescription) { () throws(Errno) in
                try file.readSome(into: UnsafeMutableRawBufferPointer(rebasing: data[0..<want]))
            }
            if n == 0 { break }
            try writer.writeData(UnsafeRawBufferPointer(rebasing: data[0..<n]), path: pathDescription)
            remaining -= Int64(n)
        }
    }
}
