import GraphDriver
import StrataSystem
import Synchronization
import SystemPackage

/// The `OwnershipShifter` a driver is given: the chown walk for rewriting layers, and idmapped
/// mounts for presenting them shifted without a copy, probed once on the driver's home.
public struct LayerShifter: OwnershipShifter {
    /// The walk used by `shift`.
    public let shifter: ChownShifter
    /// The directory whose filesystem idmapped mounts are probed on.
    public let home: FilePath
    private let probe = Probe()

    /// A shifter for layers under `home`; idmapped mounts are probed there on first use.
    public init(home: FilePath, options: ShiftOptions = ShiftOptions()) {
        shifter = ChownShifter(options: options)
        self.home = home
    }

    /// Whether the home's filesystem takes idmapped mounts (probed once, when first asked).
    public var idmappedMountsWork: Bool { probe.result(home) }

    /// The once-only probe, shared by copies of the shifter.
    private final class Probe: Sendable {
        let cached = Mutex<Bool?>(nil)
        func result(_ home: FilePath) -> Bool {
            cached.withLock { value in
                if let value { return value }
                let works = IdmappedMount.supportsIdmappedMounts(at: home)
                value = works
                return works
            }
        }
    }

    /// Rewrites owners, setuid/setgid bits, capabilities, ACLs and `override_stat` below `tree`.
    ///
    /// `ignoreChownErrors` is accepted for the protocol; the walk checks every ID before changing
    /// anything, so an unmappable ID is an error whatever it says.
    public func shift(_ tree: FilePath, from: IDMappings, to: IDMappings, ignoreChownErrors: Bool) throws(StorageError) {
        guard from != to else { return }
        try shifter.shift(tree: tree, from: from, to: to)
    }

    /// Plans the walk (nothing changes yet); the result writes the undo journal, applies and undoes.
    public func prepareShift(_ tree: FilePath, from: IDMappings, to: IDMappings,
                             ignoreChownErrors: Bool) throws(StorageError) -> any PreparedOwnershipShift {
        try shifter.prepare(tree: tree, from: from, to: to)
    }

    /// Rolls `tree` back from an undo journal (``ChownShifter/rollBack(tree:journal:)``).
    public func rollBackShift(of tree: FilePath, journal: FilePath) throws(StorageError) {
        try shifter.rollBack(tree: tree, journal: journal)
    }

    public func supportsIdmappedMounts(_ mappings: IDMappings) -> Bool {
        idmappedMountsWork && (try? mappings.validate()) != nil
    }

    public func idmappedMount(of path: FilePath, mappings: IDMappings) throws(StorageError) -> FileDescriptor {
        try IdmappedMount.detachedIdmappedMount(source: path, mappings: mappings)
    }
}
