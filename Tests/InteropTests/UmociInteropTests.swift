import Foundation
import LayerArchive
import StrataSystem
import SystemPackage
import Testing

/// An image made by umoci, its layers applied by Strata one per layer directory and stacked in an
/// overlay mount, shows the tree `umoci unpack` makes of the same image.
@Suite(
    "Interop with umoci", .serialized,
    .enabled(if: Tool.isRoot, "needs root: device nodes, owners, overlay mounts"),
    .enabled(if: Tool.umoci != nil, "umoci is not installed (Debian package umoci)"),
    .enabled(if: Tool.haveFixtureTools,
             "the fixture needs setfattr (attr), setcap (libcap2-bin), setfacl (acl), mknod, tar and gzip"))
struct UmociInteropTests {
    @Test("A two-layer umoci image with deletions applies in Strata to the tree umoci unpacks")
    func umociImageAppliesToTheSameTree() throws {
        let scratch = Scratch("umoci")
        defer { scratch.close() }
        let umoci = try Umoci(in: scratch)

        // v1: the lower fixture. v2: v1 plus every kind of entry, with a file deleted, a
        // directory deleted, and a directory removed and made again (umoci writes a whiteout
        // for each name that went; it never marks a directory opaque).
        try umoci.image("v1", from: nil) { try makeLayerTree("lower", in: $0) }
        try umoci.image("v2", from: "v1") { try makeLayerTree("merged", in: $0) }
        let reference = try umoci.unpack("v2")

        let layers = try umoci.layerBlobs("v2")
        #expect(layers.count == 2)
        let layerDirectories = try applyWithStrata(layers, in: scratch)
        // The upper layer holds umoci's whiteouts as overlay whiteouts.
        let upperLayer = try Tree.read(layerDirectories[1])
        #expect(upperLayer.files["removed"]?.isWhiteout == true)
        #expect(upperLayer.files["gone"]?.isWhiteout == true)
        #expect(upperLayer.files["opq/old"]?.isWhiteout == true)
        #expect(upperLayer.files["opq/sub"]?.isWhiteout == true)

        let merged = try stackedMount(layerDirectories, in: scratch)
        defer { try? Mounts.unmount(FilePath(merged)) }

        var expected = try Tree.read(reference, Tree.Options(includeRoot: true))
        try expectFixtureIsComplete(expected, madeBy: "umoci unpack", layerForm: false)
        #expect(expected.files["opq/old"] == nil && expected.files["removed"] == nil && expected.files["gone"] == nil)
        #expect(expected.files["opq/fresh"] != nil && expected.files["keep/stays"] != nil)
        var actual = try Tree.read(merged, Tree.Options(includeRoot: true))
        // keep/ is in v1; v2 adds keep/new, and umoci's layer has no entry for keep/ itself
        // when keep/'s time did not change to the second. See the next test: Strata then gives
        // the directory default attributes.
        #expect(expected.files["keep"]?.mode == 0o750)
        expected.files["keep"] = nil
        actual.files["keep"] = nil
        // Likewise the root: umoci writes a `./` entry only when it saw the root change, so its
        // time may be in no stream Strata is given.
        expected.files["."]?.mtime = nil
        actual.files["."]?.mtime = nil
        let differences = expected.differences(from: actual)
        #expect(differences.isEmpty, "Strata's layers, stacked, differ from umoci's unpacked tree:\n\(differences.joined(separator: "\n"))")
    }

    @Test("A parent directory that a layer's stream leaves out keeps the attributes it has below")
    func impliedParentKeepsLowerAttributes() throws {
        let scratch = Scratch("umoci-parent")
        defer { scratch.close() }
        let umoci = try Umoci(in: scratch)
        try umoci.image("v1", from: nil) {
            try sh("mkdir -m 0750 \(quoted($0))/keep && echo s > \(quoted($0))/keep/stays && chown 1000:1000 \(quoted($0))/keep && touch -d 2020-01-01 \(quoted($0))/keep")
        }
        // umoci leaves a directory out of the new layer when its own metadata did not change;
        // its time is put back so that it has not.
        try umoci.image("v2", from: "v1") { try sh("echo n > \(quoted($0))/keep/new && touch -d 2020-01-01 \(quoted($0))/keep") }
        let v2Names = try tarListing(gunzipped(try umoci.layerBlobs("v2")[1], in: scratch)).map(\.name)
        #expect(v2Names == ["keep/new"])
        let reference = try umoci.unpack("v2")
        let layers = try umoci.layerBlobs("v2")
        let layerDirectories = try applyWithStrata(layers, in: scratch)
        let merged = try stackedMount(layerDirectories, in: scratch)
        defer { try? Mounts.unmount(FilePath(merged)) }

        let expected = try Tree.read(reference)
        #expect(expected.files["keep"].map { $0.mode == 0o750 && $0.uid == 1000 } == true)
        let actual = try Tree.read(merged)
        // umoci's second layer is `keep/new` alone, without a `keep/` entry. Extracted onto one
        // root filesystem (umoci, GNU tar) keep/ stays 0750 1000:1000. Strata's applier does not
        // see the lower layers, so it makes keep/ in the new layer's directory as 0755 root:root
        // (containers-storage 1.43 does the same), and in the overlay that copy hides the lower
        // one. Applying such a parent would need the lowers' attributes, as overlayfs's copy-up
        // takes them.
        // Only keep/'s mode, owner and time are the known issue; any other difference fails.
        let differences = expected.differences(from: actual)
        let keepLines = differences.filter { line in
            ["mode", "owner", "mtime"].contains { line.hasPrefix("keep: \($0) expected ") }
        }
        #expect(differences.filter { !keepLines.contains($0) } == [],
                "Strata's layers, stacked, differ from umoci's unpacked tree:\n\(differences.joined(separator: "\n"))")
        withKnownIssue("Strata, like containers-storage 1.43, makes a parent missing from the stream 0755 root:root, hiding the lower directory's mode, owner and time") {
            #expect(keepLines.isEmpty, "\(keepLines.joined(separator: "\n"))")
        }
    }
}

/// A scratch OCI layout driven with umoci.
struct Umoci {
    let program: String
    let layout: String
    let scratch: Scratch

    init(in scratch: Scratch) throws {
        guard let program = Tool.umoci else { throw CommandFailed(description: "umoci is not installed") }
        self.program = program
        self.scratch = scratch
        layout = scratch.file("oci")
        try run(program, ["init", "--layout", layout])
    }

    /// Makes the image `tag`: a new empty one, or `base` unpacked, changed by `change` (given the
    /// root filesystem's path) and repacked as one more layer.
    func image(_ tag: String, from base: String?, _ change: (String) throws -> Void) throws {
        let bundle = scratch.file("bundle-\(tag)")
        if let base {
            try run(program, ["unpack", "--image", layout + ":" + base, bundle])
        } else {
            try run(program, ["new", "--image", layout + ":" + tag])
            try run(program, ["unpack", "--image", layout + ":" + tag, bundle])
        }
        try change(bundle + "/rootfs")
        try run(program, ["repack", "--image", layout + ":" + tag, bundle])
    }

    /// Unpacks `tag` with umoci and returns its root filesystem.
    func unpack(_ tag: String) throws -> String {
        let bundle = scratch.file("unpacked-\(tag)")
        try run(program, ["unpack", "--image", layout + ":" + tag, bundle])
        return bundle + "/rootfs"
    }

    /// The layer blobs of `tag`, lowest first.
    func layerBlobs(_ tag: String) throws -> [String] {
        try InteropTests.layerBlobs(layout: layout, tag: tag)
    }
}

/// Applies each layer blob with `LayerApplier` into its own directory; returns them lowest first.
func applyWithStrata(_ blobs: [String], in scratch: Scratch) throws -> [String] {
    var directories: [String] = []
    for (index, blob) in blobs.enumerated() {
        let directory = try scratch.directory("layers/\(index)")
        try strataApply(archive: blob, into: directory)
        directories.append(directory)
    }
    return directories
}

/// Mounts the layer directories (lowest first) as one read-only overlay; returns the mount point.
func stackedMount(_ layers: [String], in scratch: Scratch) throws -> String {
    let merged = try scratch.directory("merged")
    try Mounts.mount(source: "overlay", target: FilePath(merged), type: "overlay", flags: [.readOnly],
                     data: "lowerdir=" + layers.reversed().joined(separator: ":"))
    return merged
}

/// The layer blobs of the image tagged `tag` in the OCI layout at `layout`, lowest first.
func layerBlobs(layout: String, tag: String) throws -> [String] {
    func json(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CommandFailed(description: "\(path) is not a JSON object")
        }
        return object
    }
    func blob(_ digest: String) -> String {
        layout + "/blobs/" + digest.replacingOccurrences(of: ":", with: "/")
    }
    let index = try json(layout + "/index.json")
    let manifests = index["manifests"] as? [[String: Any]] ?? []
    guard let descriptor = manifests.first(where: {
        ($0["annotations"] as? [String: String])?["org.opencontainers.image.ref.name"] == tag
    }), let digest = descriptor["digest"] as? String else {
        throw CommandFailed(description: "no image tagged \(tag) in \(layout)")
    }
    let manifest = try json(blob(digest))
    return (manifest["layers"] as? [[String: Any]] ?? []).compactMap { ($0["digest"] as? String).map(blob) }
}

/// Decompresses a gzip layer blob into the scratch directory; returns the tar's path.
func gunzipped(_ blob: String, in scratch: Scratch) throws -> String {
    let out = scratch.file("gunzipped-\(URL(fileURLWithPath: blob).lastPathComponent).tar")
    try sh("gzip -dc < \(quoted(blob)) > \(quoted(out))")
    return out
}
