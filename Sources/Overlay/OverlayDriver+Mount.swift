import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension OverlayDriver {
    /// Where a layer is mounted: its `merged` directory, or `<runhome>/<id>/merged` for a layer
    /// of a read-only store.
    func mountPoint(of layer: LayerLocation) -> FilePath {
        layer.readOnly ? runHome.appending(RunHomeLayout.readOnlyMountPoint(layer.id)) : layer.path(StoreLayout.merged)
    }

    /// Whether something is mounted on `merged`: its device differs from its parent directory's.
    ///
    /// Mount points are looked at by path, as every process sees them: the home's descriptor
    /// (`StoreLayout.directory()`) is opened below the home's bind mount of itself, where the
    /// layers' mounts do not show.
    func isMounted(_ merged: FilePath) -> Bool {
        let cwd = FileDescriptor.currentWorkingDirectory
        guard let inner = try? cwd.status(at: merged),
              let outer = try? cwd.status(at: merged.removingLastComponent())
        else { return false }
        return inner.device != outer.device || inner.inode == outer.inode
    }

    /// Mounts the layer over its parents (or counts one more user of its mount) and returns the
    /// mount point.
    ///
    /// A read-only mount (or a layer of a read-only store) stacks the layer's own `diff` as the
    /// top lower directory and has no upper one. Mount data that fits in a page goes to
    /// `mount(2)`; longer stacks, up to the kernel's 500 lower layers, go through `fsconfig`
    /// `lowerdir+`.
    ///
    /// A layer whose remap a crash cut short is rolled back first (as `cleanup` would), so that
    /// no mount shows it half shifted.
    public func get(_ id: LayerID, options: MountOptions) throws(StorageError) -> FilePath {
        try withLayer(id, .mount, operation: "mount layer \(id)") { (layer, count) throws(StorageError) in
            // A live remap holds the layer's lock until it is done: a marker seen here is a dead one's.
            if hasRemapMarker(layer), !remapIsRunning(layer) {
                _ = try rollBackRemap(layer, count: count)
            }
            if !options.idMappings.isIdentity && !isMounted(mountPoint(of: layer)) {
                try presentOwnFiles(layer, count: count, as: options)
            }
            return try mountLocked(layer, count: count, options: options)
        }
    }

    /// Before a first mount with ID mappings: a writable mount's upper directory cannot be
    /// idmapped, so the layer's own files (usually only the empty root of a new container
    /// layer) are shifted in place to the mappings when its `idmaps` records others, journaled
    /// as a remap is; then `idmaps` names them. The layer's directory is opened to the mapped
    /// root for traversal.
    func presentOwnFiles(_ layer: LayerLocation, count: LockedMountCount, as options: MountOptions) throws(StorageError) {
        guard !layer.readOnly else { return }
        let mappings = options.idMappings
        if options.readOnly || isAdditionalLayer(layer) {
            try grantTraversal(of: layer, to: mappings)
            return
        }
        let recorded = try idMappings(of: layer.id)
        guard recorded != mappings else {
            try grantTraversal(of: layer, to: mappings)
            return
        }
        removeCopyStaging(layer)
        removeRemapFiles(layer)
        try writeRemapMarker(layer, from: recorded, to: mappings, copying: false)
        try shiftOwnFiles(layer, count: count, from: recorded, to: mappings, installingCopy: false)
    }

    /// `get` for a caller that holds the layer's lock.
    func mountLocked(_ layer: LayerLocation, count: LockedMountCount, options: MountOptions) throws(StorageError) -> FilePath {
        let merged = mountPoint(of: layer)
        if isMounted(merged) {
            // One more user (a mount whose count was lost is adopted as this user's).
            try count.set(count.count + 1)
            return merged
        }
        let data = try mountData(for: layer, options: options)
        defer { data.heldDescriptors.forEach { $0.closeQuietly() } }
        if layer.readOnly {
            try attempt("make mount point", merged) { () throws(Errno) in try makeDirectories(merged) }
        }
        if data.upper != nil { clearVolatileMarker(layer) }
        do throws(Errno) {
            try mount(data, at: merged)
        } catch .noSuchFileOrDirectory where !layer.readOnly {
            // A short link may be gone (a crash, a careless cleanup): rebuild them and retry once.
            // (Or the mount point itself went missing.)
            logger.notice("repairing short links", metadata: ["layer": "\(layer.id)"])
            try repairLinks(in: layer.store)
            try attempt("mount layer \(layer.id)", merged) { () throws(Errno) in
                try layer.makeDirectory(StoreLayout.merged, permissions: .init(rawValue: 0o700), ifMissing: true)
                try mount(data, at: merged)
            }
        } catch {
            throw StorageError("mount layer \(layer.id)", path: merged.string, errno: error)
        }
        do {
            try count.set(1)
        } catch {
            try? Mounts.unmount(merged, flags: .detach)  // an uncounted mount would leak
            throw error
        }
        return merged
    }

    /// Mounts `data` by the means `mountData` chose for it.
    func mount(_ data: OverlayMountData, at merged: FilePath) throws(Errno) {
        switch data.method {
        case .context: try data.mountWithContext(at: merged)
        case .classic: try data.mountClassic(at: merged)
        case .relative:
            guard let relative = data.relative(to: home.string) else { throw Errno(rawValue: E2BIG) }
            try relative.mountRelative(in: homeStore.directory(), at: merged)
        }
    }

    /// The cheapest means that can take the (complete) data: one `mount(2)` with absolute
    /// paths; else `fsconfig` with one `lowerdir+` per layer; else (kernels before 6.8)
    /// `mount(2)` with paths relative to the home, resolved on a thread whose working directory
    /// is the home. `nil` when none can.
    func mountMethod(for data: OverlayMountData) -> OverlayMountData.Method? {
        if data.needsContext { return .context }
        if data.fitsInPage { return .classic }
        if features.supportsLowerdirAppend && !preferClassicMount { return .context }
        if let relative = data.relative(to: home.string), relative.fitsInPage { return .relative }
        return nil
    }

    /// The typed mount data for a layer, with the means to mount it chosen. `upperAndWork`
    /// replaces the layer's own upper and work directories (an apply through a mount uses a
    /// clone of `diff`).
    func mountData(for layer: LayerLocation, options: MountOptions,
                   upperAndWork: (upper: FilePath, work: FilePath)? = nil) throws(StorageError) -> OverlayMountData {
        let operation = "mount layer \(layer.id)"
        let readOnly = options.readOnly || layer.readOnly || isAdditionalLayer(layer)
        // The layer's own directories first (its `diff` only when it is not the upper), then
        // its shifted copies, then the parents' stack.
        let own = layer.id.rawValue
        var stack: [StackDirectory] = []
        if readOnly {
            stack.append(StackDirectory(path: layer.diff.string, relativePath: layer.relative(StoreLayout.diff).string,
                                        store: layer.store, layerDirectory: own, isCopy: false))
        }
        for copy in layer.copyNames {
            stack.append(StackDirectory(path: layer.path(copy).string, relativePath: layer.relative(copy).string,
                                        store: layer.store, layerDirectory: own, isCopy: true))
        }
        stack += try parentStack(of: layer)
        // A mount shows the stack under the asked mappings, or else under the layer's own
        // (a layer shifted without a copy of its parents shows them idmapped to it).
        var presented = options
        if presented.idMappings.isIdentity { presented.idMappings = try recordedMappings(of: layer) }
        var data = try mountData(for: layer, stack: stack, upper: readOnly ? nil : (layer.diff, layer.path(StoreLayout.work)),
                                 options: presented, operation: operation)
        if let upperAndWork {
            data.upper = upperAndWork.upper.string
            data.work = upperAndWork.work.string
        }
        return try finishMountData(data, for: layer, options: options, readOnly: readOnly, operation: operation)
    }

    /// Mount data for `stack` (uppermost first) over `upper`: placeholders for a stack too
    /// short, lowers idmapped to `options.idMappings` where their layer's own mapping differs,
    /// and `metacopy=on` when a shifted copy is in the stack.
    func mountData(for layer: LayerLocation, stack: [StackDirectory], upper: (FilePath, FilePath)?,
                   options: MountOptions, operation: String) throws(StorageError) -> OverlayMountData {
        var lowers = stack.map(\.path)
        var data: OverlayMountData
        if let upper {
            if lowers.isEmpty { lowers = [layer.path(StoreLayout.empty).string] }
            data = OverlayMountData(lowers: lowers, upper: upper.0.string, work: upper.1.string, readOnly: false)
        } else {
            if lowers.count == 1 { lowers.append(layer.path(StoreLayout.empty).string) }
            data = OverlayMountData(lowers: lowers, upper: nil, work: nil, readOnly: true)
        }
        guard lowers.count <= Self.maximumLowerLayers else {
            throw StorageError(.invalidArgument, operation, path: layer.directory.string, reason:
                "the mount would stack \(lowers.count) lower layers; overlayfs mounts at most \(Self.maximumLowerLayers)")
        }
        if !options.idMappings.isIdentity {
            try idmapLowers(&data, stack: stack, mappings: options.idMappings, operation: operation)
        }
        if stack.contains(where: \.isCopy) && features.supportsMetacopy {
            // A shifted copy holds metacopy files (owners and modes; the data is below): the
            // kernel follows them only on a metacopy mount. (Without metacopy, a remap copies
            // whole files, and the stack needs nothing more.)
            data.add(try .value("metacopy", "on"))
        }
        return data
    }

    /// The driver's and the caller's options, and the means to mount.
    func finishMountData(_ data: OverlayMountData, for layer: LayerLocation, options: MountOptions, readOnly: Bool,
                         operation: String) throws(StorageError) -> OverlayMountData {
        var data = data
        for option in self.options.mountOptions { data.add(option) }
        if options.volatile && !readOnly {
            guard features.supportsVolatile else {
                data.heldDescriptors.forEach { $0.closeQuietly() }
                throw StorageError(.unsupported, operation, reason: "this kernel's overlayfs has no volatile mounts")
            }
            data.add(try .flag("volatile"))
        }
        if let label = options.label, let option = try labeler.mountOption(for: label) {
            data.add(option)
        }
        for option in options.extra { data.add(option) }
        if readOnly { data.readOnly = true }
        // Chosen now that every option is in: each one lengthens the data.
        guard let method = mountMethod(for: data) else {
            data.heldDescriptors.forEach { $0.closeQuietly() }
            throw StorageError(.unsupported, operation, path: layer.directory.string, reason:
                "\(data.lowers.count) lower layers and the mount options do not fit in one page of mount data, "
                    + "even as short links relative to the home, and this kernel lacks the new mount API's "
                    + "lowerdir+ (Linux 6.8 or later)")
        }
        data.method = method
        return data
    }

    /// Replaces lower directories with idmapped clones made by the shifter, so that the mount
    /// shows every file owned through `mappings`: each lower gets the composition of its own
    /// layer's recorded mapping (how its files are owned on disk) with `mappings`, and needs no
    /// clone when the two agree. Lowers below a shifted copy are left alone: the copy holds
    /// every name of theirs with its owners, and they only give data. (The upper directory
    /// cannot be idmapped; a writable layer's own files are shifted to `mappings` in place
    /// before the mount, see `get`.)
    private func idmapLowers(_ data: inout OverlayMountData, stack: [StackDirectory], mappings: IDMappings,
                             operation: String) throws(StorageError) {
        var held: [FileDescriptor] = []
        var mappingOf: [String: IDMappings] = [:]
        var covered = false
        do throws(StorageError) {
            for (index, entry) in stack.enumerated() {
                if covered && !entry.isCopy { break }  // below a shifted copy: data only
                covered = covered || entry.isCopy
                let own: IDMappings
                if let known = mappingOf[entry.layerPath] {
                    own = known
                } else {
                    own = try recordedMappings(in: entry.store, directory: entry.layerDirectory)
                    mappingOf[entry.layerPath] = own
                }
                guard own != mappings else { continue }
                guard supportsShifting(uidMap: mappings.uidMap, gidMap: mappings.gidMap) else {
                    throw StorageError(.unsupported, operation, reason: features.supportsIdmappedLowers
                        ? "mounting with ID mappings needs idmapped mounts from the ownership shifter, which this driver was not given"
                        : "this kernel's overlayfs does not stack idmapped lower layers on \(features.backingFileSystem)")
                }
                guard features.supportsLowerdirAppend else {
                    throw StorageError(.unsupported, operation, reason: "idmapped lower layers need the new mount API's lowerdir+")
                }
                let clone = try shifter.idmappedMount(of: FilePath(entry.path), mappings: Self.composedMapping(from: own, to: mappings))
                held.append(clone)
                data.lowers[index] = "/proc/self/fd/\(clone.rawValue)"
            }
        } catch {
            held.forEach { $0.closeQuietly() }
            throw error
        }
        data.heldDescriptors = held
        if !held.isEmpty { data.needsContext = true }
    }

    /// A volatile mount leaves `work/work/incompat/volatile` behind, and overlayfs refuses to reuse
    /// such a work directory; the layer is not mounted, so the marker can go.
    func clearVolatileMarker(_ layer: LayerLocation) {
        try? layer.removeTreeIfPresent(StoreLayout.volatileIncompat)
    }

    /// Releases one `get`. The last release unmounts and puts a fresh, empty `merged` in place
    /// (renaming a new `merged.1` over it), so nothing written while unmounted lingers.
    /// Releasing a layer that is not mounted resets its count.
    public func put(_ id: LayerID) throws(StorageError) {
        try withLayer(id, .mount, operation: "unmount layer \(id)") { (layer, count) throws(StorageError) in
            try unmountLocked(layer, count: count)
        }
    }

    /// `put` for a caller that holds the layer's lock.
    func unmountLocked(_ layer: LayerLocation, count: LockedMountCount) throws(StorageError) {
        let merged = mountPoint(of: layer)
        guard isMounted(merged) else {
            if count.count != 0 { try count.set(0) }
            return
        }
        if count.count > 1 {
            try count.set(count.count - 1)
            return
        }
        try unmount(merged)
        try count.set(0)
    }

    /// Unmounts `merged` (lazily when it is busy) and replaces it with a fresh directory.
    func unmount(_ merged: FilePath) throws(StorageError) {
        try attempt("unmount", merged) { () throws(Errno) in try Mounts.unmountOrDetach(merged) }
        let fresh = merged.removingLastComponent().appending(StoreLayout.freshMountPoint)
        let cwd = FileDescriptor.currentWorkingDirectory
        do throws(Errno) {
            try cwd.makeDirectoryIfMissing(at: fresh)
            try cwd.rename(fresh, to: merged)
        } catch {
            try? cwd.remove(at: fresh, directory: true)
        }
    }
}
