import FoundationEssentials
import GraphDriver

/// A content descriptor of the OCI image spec: what a blob is, its digest and size.
public struct OCIDescriptor: Codable, Sendable, Hashable {
    public var mediaType: String
    public var digest: String
    public var size: Int64
    public var annotations: [String: String]?
    public var platform: Platform?

    public struct Platform: Codable, Sendable, Hashable {
        public var architecture: String
        public var os: String
        public var variant: String?
    }

    /// The `org.opencontainers.image.ref.name` annotation (the tag, in a layout's index).
    public var referenceName: String? { annotations?["org.opencontainers.image.ref.name"] }
}

/// `index.json`, or an image index blob.
struct OCIIndex: Codable {
    var schemaVersion: Int
    var mediaType: String?
    var manifests: [OCIDescriptor]
}

/// An image manifest.
struct OCIManifest: Codable {
    var schemaVersion: Int
    var mediaType: String?
    var config: OCIDescriptor
    var layers: [OCIDescriptor]
}

/// The part of an image configuration that names the layers' uncompressed digests.
struct OCIConfiguration: Codable {
    struct RootFS: Codable {
        var type: String
        var diff_ids: [String]
    }
    var rootfs: RootFS
}

/// Media types Strata reads.
enum MediaType {
    static let index = "application/vnd.oci.image.index.v1+json"
    static let manifest = "application/vnd.oci.image.manifest.v1+json"
    static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    /// What a docker-archive's layer is taken for (its compression is read from its bytes).
    static let dockerLayer = "application/vnd.docker.image.rootfs.diff.tar"

    /// Layer media types, and whether they are compressed (the applier detects which way).
    static let layers: Set<String> = [
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.diff.tar",
    ]
}
