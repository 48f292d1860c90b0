import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension OverlayDriver {
    /// Fixes what `inspectStore` found; the caller holds the exclusive store lock. Returns one
    /// sentence per thing done.
    func repairStore(_ problems: [StoreProblem]) -> [String] {
        let stores = writableStores
        /// The store holding `path` and the path relative to its root.
        func inStore(_ path: FilePath) throws(Errno) -> (FileDescriptor, FilePath) {
            for store in stores {
                var relative = path
                if relative.removePrefix(store.root), !relative.isEmpty { return (try store.directory(), relative) }
            }
            throw Errno.noSuchFileOrDirectory
        }
        var done: [String] = []
        func note(_ what: String, _ path: String, _ result: Result<Void, Errno>) {
            switch result {
            case .success: done.append("\(what): \(path)")
            case .failure(let error): done.append("could not \(what): \(path): \(error)")
            }
        }
        var relink = Set<FilePath>()
        // Read once: every removal below looks for mounts under its directory.
        let table = Mounts.mountTable()
        for problem in problems {
            let path = FilePath(problem.path)
            switch problem.kind {
            case .staleStaging:
                note("removed stale staging", problem.path, Result { () throws(Errno) in try deleteDiscarded(path, mounts: table) })
            case .halfMadeLayer:
                note("removed half-made layer", problem.path, Result { () throws(Errno) in try deleteDiscarded(path, mounts: table) })
                if let id = path.lastComponent.flatMap({ try? LayerID($0.string) }) {
                    try? counts.remove(id)
                }
            case .incompleteLayer:
                // Its contents never arrived; the importer that made it would remake it.
                if let id = path.lastComponent.flatMap({ try? LayerID($0.string) }),
                   let store = stores.first(where: { $0.root == path.removingLastComponent() }) {
                    note("removed incomplete layer", problem.path, Result { () throws(Errno) in
                        try discardLayer(id, in: store, mounts: table)
                    })
                }
            case .missingDirectory:
                note("made missing directory", problem.path, Result { () throws(Errno) in
                    let (store, relative) = try inStore(path)
                    try store.makeDirectoryIfMissing(at: relative, permissions: .init(rawValue: 0o700))
                })
            case .leakedMount:
                note("unmounted leaked mount", problem.path, Result { () throws(Errno) in
                    try Mounts.unmountOrDetach(path)
                })
                if path.lastComponent?.string == StoreLayout.merged,
                   let id = path.removingLastComponent().lastComponent.flatMap({ try? LayerID($0.string) }) {
                    try? counts.remove(id)
                }
            case .staleMountCount:
                note("reset mount count", problem.path, Result { () throws(Errno) in
                    if let name = path.lastComponent?.string { try counts.remove(named: name) }
                })
            case .orphanLink:
                note("removed orphan short link", problem.path, Result { () throws(Errno) in
                    let (store, relative) = try inStore(path)
                    do throws(Errno) { try store.remove(at: relative) } catch .noSuchFileOrDirectory {}
                })
            case .interruptedRemap:
                guard let id = path.lastComponent.flatMap({ try? LayerID($0.string) }), let layer = find(id) else { continue }
                do throws(StorageError) {
                    switch try recoverInterruptedRemap(layer) {
                    case .rolledBack: done.append("rolled back interrupted remap: \(problem.path)")
                    case .markerRemoved: done.append("removed marker of a remap that changed nothing or had finished: \(problem.path)")
                    case nil: break
                    }
                } catch {
                    done.append("could not roll back interrupted remap: \(problem.path): \(error)")
                }
            case .missingLink, .missingShortLink, .brokenLower:
                // The store of the layer: two levels up from `<store>/<id>/link` or `<store>/l/<short>`.
                relink.insert(path.removingLastComponent().removingLastComponent())
            }
        }
        for root in relink.sorted(by: { $0.string < $1.string }) {
            guard let store = stores.first(where: { $0.root == root }) else { continue }
            do throws(StorageError) {
                try repairLinks(in: store)
                done.append("rebuilt link files and short links: \(store.path(StoreLayout.linkDirectory))")
            } catch {
                done.append("could not rebuild short links: \(error)")
            }
        }
        return done
    }
}
