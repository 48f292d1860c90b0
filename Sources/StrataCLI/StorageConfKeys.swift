/// The keys of containers/storage's `storage.conf`, sorted by what Strata does with them.
///
/// Taken from containers/storage's `TomlConfig` and `OptionsConfig` (1.43, as Debian ships it,
/// plus the keys later releases added) and `containers-storage.conf(5)`. A key in none of these
/// sets is unknown to both and draws its own warning.
enum StorageConfKeys {
    /// Tables Strata reads key by key.
    static let tables: Set<[String]> = [
        ["storage"], ["storage", "options"], ["storage", "options", "overlay"],
    ]

    /// Keys Strata uses: a value of the wrong type is an error.
    static let used: Set<[String]> = Set([
        ["storage", "driver"], ["storage", "graphroot"], ["storage", "runroot"], ["storage", "imagestore"],
        ["storage", "rootless_storage_path"],
        ["storage", "options", "additionalimagestores"], ["storage", "options", "additionallayerstores"],
    ] + overlayOptions.map { ["storage", "options", "overlay", $0] }
      // `inodes` has no form for every driver.
      + overlayOptions.filter { $0 != "inodes" }.map { ["storage", "options", $0] })

    /// The overlay driver's options that `[storage.options]` may also give, for every driver;
    /// `[storage.options.overlay]` wins over them (containers/storage's `GetGraphDriverOptions`).
    static let overlayOptions = ["mountopt", "size", "inodes", "force_mask", "skip_mount_home", "ignore_chown_errors"]

    /// Keys of features Strata does not have: accepted, named in one warning, not used.
    static let unsupported: Set<[String]> = [
        // A second kind of store, kept in memory between reboots; priorities among several drivers.
        ["storage", "transient_store"], ["storage", "driver_priority"],
        // Pulling and user namespaces belong to the engine above the driver: Strata's commands
        // take explicit --uidmap/--gidmap, and mounts are volatile only when asked.
        ["storage", "options", "pull_options"],
        ["storage", "options", "remap-uids"], ["storage", "options", "remap-gids"],
        ["storage", "options", "remap-user"], ["storage", "options", "remap-group"],
        ["storage", "options", "root-auto-userns-user"],
        ["storage", "options", "auto-userns-min-size"], ["storage", "options", "auto-userns-max-size"],
        ["storage", "options", "disable-volatile"],
        // Strata mounts overlay in the kernel: no FUSE program, no composefs.
        ["storage", "options", "mount_program"], ["storage", "options", "overlay", "mount_program"],
        ["storage", "options", "overlay", "use_composefs"],
        ["storage", "options", "overlay", "convert_images"],
    ]

    /// Sections of the other drivers: every key in them is accepted and named in the warning.
    static let otherDrivers: Set<String> = ["aufs", "btrfs", "thinpool", "vfs", "zfs"]

    /// What a key is to Strata.
    enum Role {
        case table
        case used
        case unsupported
        /// A section of another driver (its keys are unsupported, each named).
        case otherDriverTable
        case unknown
    }

    static func role(of key: [String]) -> Role {
        if tables.contains(key) { return .table }
        if used.contains(key) { return .used }
        if unsupported.contains(key) { return .unsupported }
        if key.count == 3, key[0] == "storage", key[1] == "options", otherDrivers.contains(key[2]) {
            return .otherDriverTable
        }
        if key.count > 3, key[0] == "storage", key[1] == "options", otherDrivers.contains(key[2]) {
            return .unsupported
        }
        return .unknown
    }
}
