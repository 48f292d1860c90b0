import GraphDriver
import Overlay
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension Snapshotter {
    /// The mounts containerd performs for `record` (an active snapshot or a view).
    ///
    /// As containerd's overlayfs snapshotter: a snapshot on no parent, or a view of a one-layer
    /// chain, is a bind mount of that directory; otherwise an `overlay` with `lowerdir` (and
    /// `upperdir`, `workdir` for an active snapshot). When the options would not fit in the page
    /// `mount(2)` takes, or the snapshot has ID mappings (idmapped lowers, which only the new
    /// mount API stacks), the snapshotter mounts the layer itself, keeps that mount for the
    /// snapshot's life, and serves a bind mount of it.
    func mounts(of record: SnapshotRecord) throws(StorageError) -> [MountSpec] {
        guard record.kind != .committed else {
            throw StorageError(.busy, "read mounts", reason: "snapshot \(quoted(record.key)) is committed; only active snapshots and views have mounts")
        }
        let readOnly = record.kind == .view
        let mappings = try SnapshotLabels.idMappings(record.labels)
        let label = try record.labels[SnapshotLabels.mountLabel].map { (text) throws(StorageError) in try SELinuxContext(text) }
            ?? configuration.mountLabel
        if !mappings.isIdentity {
            return [try ownMount(of: record, options: MountOptions(label: label, idMappings: mappings, readOnly: readOnly))]
        }
        let items = try driver.metadata(of: record.layer)
        func item(_ key: String) -> String? { items.first { $0.key == key }?.value }
        let lowers = item("LowerDir").map { $0.split(separator: ":").map(String.init) } ?? []
        guard let upper = item("UpperDir"), let work = item("WorkDir") else {
            throw StorageError(.corrupt, "read mounts", reason: "the driver gave no directories for layer \(record.layer)")
        }
        var labelOptions: [String] = []
        if let label, let option = try driver.labeler.mountOption(for: label) { labelOptions = [option.description] }

        if readOnly {
            if lowers.isEmpty { return [MountSpec(type: "bind", source: upper, options: ["ro", "rbind"])] }
            if lowers.count == 1 && labelOptions.isEmpty {
                return [MountSpec(type: "bind", source: lowers[0], options: ["ro", "rbind"])]
            }
            let options = labelOptions + ["lowerdir=" + lowers.joined(separator: ":")]
            if options.joined(separator: ",").utf8.count > Self.mountDataLimit {
                return [try ownMount(of: record, options: MountOptions(label: label, readOnly: true))]
            }
            // Overlay needs two lowers without an upper: the view's own empty directory is the second.
            return [MountSpec(type: "overlay", source: "overlay",
                              options: labelOptions + ["lowerdir=" + (lowers.count == 1 ? lowers + [upper] : lowers).joined(separator: ":")])]
        }
        if lowers.isEmpty {
            // A bind mount carries no context=: the driver labeled the directory when it made it.
            return [MountSpec(type: "bind", source: upper, options: ["rw", "rbind"])]
        }
        let options = labelOptions + ["index=off", "workdir=" + work, "upperdir=" + upper, "lowerdir=" + lowers.joined(separator: ":")]
        if options.joined(separator: ",").utf8.count > Self.mountDataLimit {
            return [try ownMount(of: record, options: MountOptions(label: label))]
        }
        return [MountSpec(type: "overlay", source: "overlay", options: options)]
    }
}
