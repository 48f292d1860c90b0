import GraphDriver
import LayerArchive
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A differ that fills the staging directory from a tar stream (plain, gzip or zstd).
public struct TarDiffer: Differ {
    /// The stream; read once.
    public let input: FileDescriptor

    public init(input: FileDescriptor) {
        self.input = input
    }

    public func applyDiff(into destination: FilePath, options: DifferOptions) throws(StorageError) -> DifferOutput {
        let result = try LayerApplier.apply(from: input, into: destination, options: ApplyOptions(
            idMappings: options.idMappings, whiteoutFormat: .overlay, ignoreChownErrors: options.ignoreChownErrors,
            forceMask: options.forceMask))
        return DifferOutput(target: destination, size: result.size, entries: result.entries)
    }
}

extension OverlayDriver {
    /// `<home>/staging`.
    var stagingRoot: FilePath { home.appending("staging") }

    /// Makes `<home>/staging/<random>/` with a `diff` directory for the differ to fill and a
    /// lock (held by this driver until the directory is applied or cleaned up) so that
    /// `cleanup` in another process leaves it alone.
    public func applyDiffWithDiffer(options: DifferOptions, differ: any Differ) throws(StorageError) -> DifferOutput {
        let directory = stagingRoot.appending("differ-\(randomSuffix())")
        let diff = directory.appending("diff")
        let cwd = FileDescriptor.currentWorkingDirectory
        // Under the store lock, so that cleanup never sees the directory before its lock.
        let storeLock = try storeLock(exclusive: false)
        let lock = try attempt("make staging directory", directory) { () throws(Errno) in
            try cwd.makeDirectoryIfMissing(at: stagingRoot)
            try cwd.makeDirectory(at: directory, permissions: .init(rawValue: 0o700))
            let lock = try FileLock.acquire(directory.appending(".lock"))
            // A base layer's root mode; applied to a child, the staged root takes the layer's
            // (its parent's) mode unless the differ set its own (see applyDiffFromStagingDirectory).
            try cwd.makeDirectory(at: diff, permissions: Self.baseLayerRootMode)
            try cwd.changeMode(at: diff, permissions: Self.baseLayerRootMode)
            return lock
        }
        _ = consume storeLock
        do {
            var output = try differ.applyDiff(into: diff, options: DifferOptions(
                idMappings: options.idMappings, ignoreChownErrors: options.ignoreChownErrors || self.options.ignoreChownErrors,
                forceMask: options.forceMask ?? self.options.forceMask))
            output.target = diff
            stagingLocks.withLock { $0[directory] = lock }
            return output
        } catch {
            try? cwd.removeTree(at: directory)
            throw error
        }
    }

    /// Makes staged contents the layer's own: the layer's `diff` must be empty and not mounted;
    /// the staged directory is renamed over it in one step.
    public func applyDiffFromStagingDirectory(_ id: LayerID, parent: LayerID?, output: DifferOutput,
                                              options: DifferOptions) throws(StorageError) {
        let operation = "apply staged diff to layer \(id)"
        let directory = output.target.removingLastComponent()
        guard directory.removingLastComponent() == stagingRoot, output.target.lastComponent?.string == "diff" else {
            throw StorageError(.invalidArgument, operation, path: output.target.string,
                               reason: "not a staging directory of this driver")
        }
        let lock = try storeLock(exclusive: false)
        defer { withExtendedLifetime(lock) {} }
        let layer = try locate(id, operation: operation)
        guard try isDirectParent(parent, of: layer) else {
            throw StorageError(.invalidArgument, operation, path: layer.directory.string,
                               reason: "\(parent?.rawValue ?? "no parent") is not the layer's parent")
        }
        let count = try counts.lock(id)
        defer { withExtendedLifetime(count) {} }
        guard !isMounted(mountPoint(of: layer)) else {
            throw StorageError(.busy, operation, path: layer.directory.string, reason: "the layer is mounted")
        }
        let cwd = FileDescriptor.currentWorkingDirectory
        try attempt(operation, layer.diff) { () throws(Errno) in
            let diff = try FileDescriptor.openDirectory(layer.diff)
            defer { diff.closeQuietly() }
            guard try diff.directoryEntries().isEmpty else { throw Errno.directoryNotEmpty }
            // The staged directory takes the layer's place: give it the layer's quota project
            // (files the differ already wrote keep theirs: quota accounting starts from here).
            let staged = try FileDescriptor.openDirectory(output.target)
            defer { staged.closeQuietly() }
            if let attributes = try? diff.inodeAttributes(), attributes.projectID != 0 {
                try staged.setInodeAttributes(attributes)
            }
            // A root the differ left as staging made it takes the layer's root mode (0555 for a
            // base layer, the parent's for a child), as containers/storage's staged apply does.
            let stagedStatus = try staged.status(), layerStatus = try diff.status()
            if stagedStatus.permissions == Self.baseLayerRootMode && layerStatus.permissions != Self.baseLayerRootMode {
                try staged.changeMode(permissions: layerStatus.permissions)
            }
            try cwd.rename(output.target, to: layer.diff, flags: .exchange)
        }
        // The staging directory now holds the layer's old, empty diff.
        try? cwd.removeTree(at: directory)
        _ = stagingLocks.withLock { $0.removeValue(forKey: directory) }
    }

    /// Removes a staging directory (its contents or the directory itself may be given).
    public func cleanupStagingDirectory(_ stagingDirectory: FilePath) throws(StorageError) {
        var directory = stagingDirectory.lexicallyNormalized()
        if directory.lastComponent?.string == "diff" { directory = directory.removingLastComponent() }
        guard directory.removingLastComponent() == stagingRoot else {
            throw StorageError(.invalidArgument, "clean up staging directory", path: stagingDirectory.string,
                               reason: "not a staging directory of this driver")
        }
        try attempt("clean up staging directory", directory) { () throws(Errno) in
            try FileDescriptor.currentWorkingDirectory.removeTree(at: directory)
        }
        _ = stagingLocks.withLock { $0.removeValue(forKey: directory) }
    }

    /// The layer's `diff`: a differ may write there directly when the layer is new.
    public func differTarget(_ id: LayerID) throws(StorageError) -> FilePath {
        try locate(id, operation: "find differ target of layer \(id)").diff
    }

    /// Removes staging directories nobody holds: differ directories whose lock is free, and
    /// leftovers of creates and removes that a crash interrupted; rolls back interrupted remaps.
    /// `table` is the mount table, read once for the pass.
    ///
    /// The caller holds the exclusive store lock: creates, removes, applies and naive diffs run
    /// under the store lock (exclusive or shared), so none is in flight. Every step is tried;
    /// the first failure to roll back a remap is thrown once the pass is done (a layer left
    /// half shifted must not look cleaned up).
    func removeStaleStagingDirectories(mounts table: [Mounts.Entry]) throws(StorageError) {
        let cwd = FileDescriptor.currentWorkingDirectory
        var firstError: StorageError?
        for (root, readOnly) in searchedStores where !readOnly {
            let staging = root.appending("staging")
            guard let dir = try? FileDescriptor.openDirectory(staging) else { continue }
            defer { dir.closeQuietly() }
            for entry in (try? dir.directoryEntries()) ?? [] {
                let path = staging.appending(entry.name)
                if entry.name.hasPrefix("differ-") {
                    if stagingLocks.withLock({ $0[path] != nil }) { continue }
                    guard let held = try? FileLock.tryAcquire(path.appending(".lock")) else { continue }
                    withExtendedLifetime(held) { try? deleteDiscarded(path, mounts: table) }
                } else {
                    // An apply through a mount that crashed may have left its mount behind, and
                    // a remove that crashed its layer's quota project: both are undone first.
                    try? deleteDiscarded(path, mounts: table)
                }
            }
        }
        // What a crashed apply (or small write) left inside layer directories.
        for (root, readOnly) in searchedStores where !readOnly {
            guard let dir = try? FileDescriptor.openDirectory(root) else { continue }
            defer { dir.closeQuietly() }
            for entry in (try? dir.directoryEntries()) ?? [] where entry.kind == .directory {
                if Self.isStaleProbe(entry.name) {
                    // A feature probe killed with its overlay still mounted.
                    try? deleteDiscarded(root.appending(entry.name), mounts: table)
                    continue
                }
                guard !Self.reservedNames.contains(entry.name), let id = try? LayerID(entry.name),
                      let layer = try? dir.openDirectory(at: FilePath(entry.name))
                else { continue }
                defer { layer.closeQuietly() }
                // A remap a crash cut short: rolled back from its journal (or, with none, its
                // marker removed), before its `remapping.undo.new` goes with the leftovers.
                let location = LayerLocation(id: id, store: root, readOnly: false)
                do throws(StorageError) {
                    _ = try recoverInterruptedRemap(location)
                } catch {
                    logger.error("could not roll back an interrupted remap", metadata: ["layer": "\(id)", "error": "\(error)"])
                    if firstError == nil { firstError = error }
                }
                for leftover in (try? layer.directoryEntries()) ?? [] where Self.isLeftover(leftover.name) {
                    try? deleteDiscarded(root.appending(entry.name).appending(leftover.name), mounts: table)
                }
                // A layer created for contents that never came (its creator died).
                if isAbandoned(id) {
                    try? discardLayer(id, in: root, mounts: table)
                }
            }
            // Short links of layers a crash took away (and links a crash never made).
            try? repairLinks(in: root)
        }
        // Views a crashed naive diff left in the run home.
        if let run = try? FileDescriptor.openDirectory(runHome) {
            defer { run.closeQuietly() }
            for entry in (try? run.directoryEntries()) ?? [] where entry.name.hasPrefix("naive-") {
                let path = runHome.appending(entry.name)
                for view in ["old", "new"] { try? Mounts.unmount(path.appending(view), flags: .detach) }
                try? cwd.removeTree(at: path)
            }
        }
        if let firstError { throw firstError }
    }
}
