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
    func discardLayer(_ id: LayerID, in store: StoreLayout, mounts: [Mounts.Entry]? = nil) throws(Errno) {
        let graveyard = try retireLayer(id, in: store)
        try deleteDiscarded(graveyard, mounts: mounts)
    }

    /// Renames `<store>/<id>` into `<store>/staging/remove-<id>-…` (so that a crash from here on
    /// leaves a staging directory, which cleanup deletes), removes its `l/` entry when that
    /// still points at it and its mount count file. Returns where the directory went.
    /// The caller holds the exclusive store lock (a create of the same ID could otherwise make
    /// the short link this removes).
    func retireLayer(_ id: LayerID, in store: StoreLayout) throws(Errno) -> FilePath {
        let fd = try store.directory()
        let name = StoreLayout.stagingName(.remove, id)
        let relative = FilePath(StoreLayout.staging + "/" + name)
        try fd.makeDirectoryIfMissing(at: FilePath(StoreLayout.staging))
        try fd.rename(FilePath(id.rawValue), to: relative)
        if let short = fd.readShortName(at: relative.appending(StoreLayout.link)) {
            let link = FilePath(StoreLayout.shortLinkName(short))
            if (try? fd.readSymbolicLink(at: link)) == ShortLinks.target(for: id) {
                try? fd.remove(at: link)
            }
        }
        try? counts.remove(id)
        return store.path(StoreLayout.staging).appending(name)
    }

    /// Deletes a directory that is no longer (or never was) a layer of the store: unmounts what
    /// is mounted below it (deepest first), releases the quota project of its `diff`, then
    /// removes the tree. `mounts` is the mount table when the caller has read it already.
    ///
    /// The removal never crosses a mount point (`EXDEV`), so without a table the mount table is
    /// read only when the removal meets a mount below the directory: a plain removal (the common
    /// case, and every Remove the containerd snapshotter serves) does not parse
    /// `/proc/self/mountinfo`, whose size grows with the host's mounts.
    ///
    /// It works by path, as mounts are found: what it deletes may be anywhere in a store
    /// (staging, a leftover inside a layer) or a stale probe's scratch directory.
    func deleteDiscarded(_ path: FilePath, mounts: [Mounts.Entry]? = nil) throws(Errno) {
        let cwd = FileDescriptor.currentWorkingDirectory
        guard let st = try? cwd.status(at: path), st.kind == .directory else {
            do throws(Errno) { try cwd.remove(at: path) } catch .noSuchFileOrDirectory {}
            return
        }
        if let mounts { Self.unmountAll(below: path, in: mounts) }
        if quota.isSupported {
            try? quota.release(path.appending(StoreLayout.diff))
        }
        do throws(Errno) {
            try cwd.removeTree(at: path)
        } catch .noSuchFileOrDirectory {
        } catch .improperLink {
            // A mount below it (one made after the caller's table was read, or no table given).
            Self.unmountAll(below: path, in: Mounts.mountTable())
            do throws(Errno) { try cwd.removeTree(at: path) } catch .noSuchFileOrDirectory {}
        }
    }

    /// Detaches every mount below `path` in `table`, deepest (latest) first.
    private static func unmountAll(below path: FilePath, in table: [Mounts.Entry]) {
        let prefix = path.string + "/"
        for entry in table.reversed() where entry.mountPoint.hasPrefix(prefix) {
            try? Mounts.unmount(FilePath(entry.mountPoint), flags: .detach)
        }
    }
}
