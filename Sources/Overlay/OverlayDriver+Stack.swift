import GraphDriver
import StrataSystem
import SystemPackage

/// One lower directory of a mount: a layer's `diff` or one of its shifted copies (`diffN`).
struct StackDirectory: Sendable, Hashable {
    /// The path as it goes into the mount data.
    var path: String
    /// The directory of the layer it belongs to (`<store>/l/<short>/..` for a parent: resolved
    /// by the kernel, one lookup, no readlink).
    var layerDirectory: String
    /// Whether it is a shifted copy (`diffN`) of the layers below it: every name of theirs is in
    /// it, with its owners, and metacopy files whose data is below.
    var isCopy: Bool
}

extension OverlayDriver {
    /// The name of a layer's `n`th shifted copy, as containers/storage names its rotated upper
    /// directories: `diff1`, `diff2`…
    static func copyName(_ n: Int) -> String { "diff\(n)" }

    /// Where a remap builds a new shifted copy before renaming it in as `diff1`, and its overlay
    /// work directory. A crash leaves at most these, which the rollback removes.
    static let copyStagingName = "diff1.staging"
    static let copyWorkName = "work1.staging"

    /// The shifted copies under `directory` (a layer directory, or `<store>/l/<short>/..`), in
    /// mount order: `diff1`, `diff2`…, stopping at the first missing one.
    func copyPaths(under directory: String) -> [String] {
        var result: [String] = []
        var n = 1
        while FileDescriptor.currentWorkingDirectory.exists(at: FilePath(directory + "/" + Self.copyName(n))) {
            result.append(directory + "/" + Self.copyName(n))
            n += 1
        }
        return result
    }

    /// The layer's own shifted copies (`diff1`…), in mount order.
    func copies(of layer: LayerLocation) -> [FilePath] {
        copyPaths(under: layer.directory.string).map { FilePath($0) }
    }

    /// The lower directories a mount of the layer stacks below its own directories, parent
    /// first: each parent's `diff` followed by that parent's shifted copies (as containers/storage
    /// adds a lower layer's `diffN` right after it).
    func parentStack(of layer: LayerLocation) throws(StorageError) -> [StackDirectory] {
        let links = try lowerPaths(of: layer, includingCopies: false)
        var result: [StackDirectory] = []
        result.reserveCapacity(links.count)
        for link in links {
            let directory = link + "/.."
            result.append(StackDirectory(path: link, layerDirectory: directory, isCopy: false))
            for copy in copyPaths(under: directory) {
                result.append(StackDirectory(path: try resolvedCopyPath(copy, link: link), layerDirectory: directory, isCopy: true))
            }
        }
        return result
    }

    /// A copy's path with the parent's short link resolved (`<store>/<id>/diffN`): mount data
    /// holds no `..`.
    private func resolvedCopyPath(_ copy: String, link: String) throws(StorageError) -> String {
        let target = try attempt("read short link", FilePath(link)) { () throws(Errno) in
            try FileDescriptor.currentWorkingDirectory.readSymbolicLink(at: FilePath(link))
        }
        let store = FilePath(link).removingLastComponent().removingLastComponent()
        guard let layer = ShortLinks.layer(fromTarget: target) else {
            throw StorageError(.corrupt, "read short link", path: link, reason: "'\(target)' does not name a layer")
        }
        return store.appending(layer.rawValue).string + "/" + FilePath(copy).lastComponent!.string
    }

    /// The ID mapping recorded in a layer directory's `idmaps` (the identity when absent).
    func recordedMappings(in directory: String) throws(StorageError) -> IDMappings {
        let path = FilePath(directory + "/" + Self.idMappingsFile)
        let text: String
        do throws(Errno) {
            text = try FileDescriptor.currentWorkingDirectory.readText(at: path)
        } catch .noSuchFileOrDirectory {
            return .identity
        } catch {
            throw StorageError("read ID mappings", path: path.string, errno: error)
        }
        return try Self.parseMappings(text.split(separator: "\n"))
    }

    /// The mapping an idmapped mount needs so that files owned on disk under `from` appear owned
    /// under `to`: container ID `c`, stored as `from(c)`, is shown as `to(c)`. Container IDs
    /// that either mapping lacks are left out (they show as the overflow ID). As mappings, the
    /// result's "container" side is the on-disk ID and its "host" side the shown one.
    static func composedMapping(from: IDMappings, to: IDMappings) -> IDMappings {
        IDMappings(uidMap: compose(from.uidMap, to.uidMap), gidMap: compose(from.gidMap, to.gidMap))
    }

    /// `compose` for one kind of ID; an empty map is the identity.
    static func compose(_ from: [IDMap], _ to: [IDMap]) -> [IDMap] {
        let whole = [IDMap(containerID: 0, hostID: 0, size: UInt32.max)]
        let source = from.isEmpty ? whole : from
        let target = to.isEmpty ? whole : to
        var result: [IDMap] = []
        for s in source {
            for t in target {
                let low = max(UInt64(s.containerID), UInt64(t.containerID))
                let high = min(UInt64(s.containerID) + UInt64(s.size), UInt64(t.containerID) + UInt64(t.size))
                guard low < high else { continue }
                result.append(IDMap(containerID: UInt32(UInt64(s.hostID) + low - UInt64(s.containerID)),
                                    hostID: UInt32(UInt64(t.hostID) + low - UInt64(t.containerID)),
                                    size: UInt32(high - low)))
            }
        }
        return result.sorted { $0.containerID < $1.containerID }
    }
}
