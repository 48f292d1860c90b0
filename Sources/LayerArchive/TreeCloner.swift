import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Makes a copy of a directory tree in which every non-directory is a hard link to the
/// original: cheap (no data is copied) and safe for an apply, which never writes into an
/// existing file but always replaces it.
enum TreeCloner {
    /// Links everything below `source` into the empty directory `destination`.
    static func linkContents(of source: FileDescriptor, into destination: FileDescriptor, path: String) throws(StorageError) {
        // Raw names: a name that is not UTF-8 must reach the file it names.
        let entries: [RawDirectoryEntry] = try attempt("copy layer for apply", path) { () throws(Errno) in
            try source.rawDirectoryEntries()
        }
        for entry in entries {
            let name = entry.name
            let childPath = path + "/" + name.string
            var kind = entry.kind
            if kind == .unknown {
                do throws(Errno) { kind = try source.status(at: name).kind } catch {
                    throw StorageError("copy layer for apply", path: childPath, errno: error)
                }
            }
            if kind == .directory {
                let (from, to): (FileDescriptor, FileDescriptor) = try attempt("copy layer for apply", childPath) { () throws(Errno) in
                    let from = try source.openDirectory(at: name)
                    try destination.makeDirectory(at: name, permissions: .init(rawValue: 0o700))
                    return (from, try destination.openDirectory(at: name))
                }
                defer { from.closeQuietly(); to.closeQuietly() }
                try linkContents(of: from, into: to, path: childPath)
                try copyDirectoryAttributes(from: from, to: to, path: childPath)
            } else {
                try attempt("copy layer for apply", childPath) { () throws(Errno) in
                    try source.makeHardLink(from: name, to: name, in: destination)
                }
            }
        }
    }

    /// Gives `destination` the owner, mode, extended attributes and times of `source`.
    static func copyDirectoryAttributes(from source: FileDescriptor, to destination: FileDescriptor, path: String) throws(StorageError) {
        try attempt("copy layer for apply", path) { () throws(Errno) in
            let status = try source.status()
            try destination.changeOwner(user: status.userID, group: status.groupID)
            try destination.changeMode(permissions: status.permissions)
            for name in try source.extendedAttributeNames() {
                if let value = try source.extendedAttribute(name) {
                    try destination.setExtendedAttribute(name, value)
                }
            }
            // A project quota follows the directory: new files in the copy are charged to the
            // same project as files in the original.
            if let attributes = try? source.inodeAttributes(), attributes.projectID != 0 || attributes.inheritsProject {
                var copy = try destination.inodeAttributes()
                copy.projectID = attributes.projectID
                copy.inheritsProject = attributes.inheritsProject
                try destination.setInodeAttributes(copy)
            }
            try destination.setTimes(access: status.accessTime, modification: status.modificationTime)
        }
    }
}
