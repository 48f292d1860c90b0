import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension OverlayDriver {
    /// Takes a layer directory out of its store and deletes it: see `retireLayer` and
    /// `deleteDiscarded`. The caller holds the exclusive store lock.
    ///
    /// Every path that throws a layer away (a create rolled back, a remove, cleanup of an
    /// abandoned layer, repair of an incomplete one) goes through these two, so that none
    /// forgets the quota project, a mount below the layer, its short link or its count.
    func discardLayer(_ id: LayerID, in store: FilePath, mounts: [Mounts.Entry]? = nil) throws(Errno) {
        let graveyard = try retireLayer(id, in: store)
        try deleteDiscarded(graveyard, mounts: mounts)
    }

    /// Renames `<store>/<id>` into `<store>/staging/remove-<id>-…` (so that a crash from here on
    /// leaves a staging directory, which cleanup deletes), removes its `l/` entry when that
    /// still points at it and its mount count file. Returns where the directory went.
    /// The caller holds the exclusive store lock (a create of the same ID could otherwise make
    /// the short link this removes).
    func retireLayer(_ id: LayerID, in store: FilePath) throws(Errno) -> FilePath {
        let cwd = FileDescriptor.currentWorkingDirectory
        let staging = store.appending("staging")
        let graveyard = staging.appending("remove-\(id.rawValue)-\(randomSuffix())")
        try cwd.makeDirectoryIfMissing(at: staging)
        try cwd.rename(store.appending(id.rawValue), to: graveyard)
        if let short = cwd.readShortName(at: graveyard.appending("link")) {
            let link = store.appending(ShortLinks.directoryName).appending(short)
            if (try? cwd.readSymbolicLink(at: link)) == ShortLinks.target(for: id) {
                try? cwd.remove(at: link)
            }
        }
        try? cwd.remove(at: counts.directory.appending(id.rawValue))
        return graveyard
    }

    /// Deletes a directory that is no longer (or never was) a layer of the store: unmounts what
    /// is mounted below it (deepest first), releases the quota project of its `diff`, then
    /// removes the tree. `mounts` is the mount table when the caller has read it already.
    func deleteDiscarded(_ path: FilePath, mounts: [Mounts.Entry]? = nil) throws(Errno) {
        let cwd = FileDescriptor.currentWorkingDirectory
        guard let st = try? cwd.status(at: path), st.kind == .directory else {
            do throws(Errno) { try cwd.remove(at: path) } catch .noSuchFileOrDirectory {}
            return
        }
        let prefix = path.string + "/"
        for entry in (mounts ?? Mounts.mountTable()).reversed() where entry.mountPoint.hasPrefix(prefix) {
            try? Mounts.unmount(FilePath(entry.mountPoint), flags: .detach)
        }
        if quota.isSupported {
            try? quota.release(path.appending("diff"))
        }
        do throws(Errno) { try cwd.removeTree(at: path) } catch .noSuchFileOrDirectory {}
    }
}
