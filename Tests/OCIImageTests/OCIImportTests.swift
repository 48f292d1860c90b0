import Crypto
import Foundation
import GraphDriver
import OCIImage
import Overlay
import StrataSystem
import SystemPackage
import Testing

/// Writes OCI image layouts blob by blob, so tests can make broken ones too.
struct LayoutBuilder {
    let root: URL

    init(_ root: URL) throws {
        self.root = root
        try FileManager.default.createDirectory(at: root.appendingPathComponent("blobs/sha256"), withIntermediateDirectories: true)
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: root.appendingPathComponent("oci-layout"))
    }

    static func digest(_ data: Data) -> String {
        "sha256:" + SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    @discardableResult
    func blob(_ data: Data) throws -> (digest: String, size: Int) {
        let digest = Self.digest(data)
        try data.write(to: root.appendingPathComponent("blobs/sha256/" + digest.dropFirst(7)))
        return (digest, data.count)
    }

    /// Writes an image of `layers` (uncompressed tars, gzipped when `gzip`), tagged `tag`.
    func image(layers: [Data], tag: String = "latest", gzip: Bool = true, mediaType: String? = nil,
               diffIDs overrideDiffIDs: [String]? = nil) throws {
        var descriptors: [String] = []
        for layer in layers {
            let blobData = gzip ? try gzipped(layer) : layer
            let (digest, size) = try blob(blobData)
            let type = mediaType ?? (gzip ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.oci.image.layer.v1.tar")
            descriptors.append(#"{"mediaType":"\#(type)","digest":"\#(digest)","size":\#(size)}"#)
        }
        let diffIDs = overrideDiffIDs ?? layers.map(Self.digest)
        let config = Data(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[\#(diffIDs.map { "\"\($0)\"" }.joined(separator: ","))]}}"#.utf8)
        let c = try blob(config)
        let manifest = Data(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(c.digest)","size":\#(c.size)},"layers":[\#(descriptors.joined(separator: ","))]}"#.utf8)
        let m = try blob(manifest)
        let index = #"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(m.digest)","size":\#(m.size),"annotations":{"org.opencontainers.image.ref.name":"\#(tag)"}}]}"#
        try Data(index.utf8).write(to: root.appendingPathComponent("index.json"))
    }

    private func gzipped(_ data: Data) throws -> Data {
        let file = root.appendingPathComponent("tmp-gz")
        try data.write(to: file)
        try shell("gzip -n -f \(file.path)")
        let out = try Data(contentsOf: URL(fileURLWithPath: file.path + ".gz"))
        try FileManager.default.removeItem(atPath: file.path + ".gz")
        return out
    }
}

@discardableResult
func shell(_ command: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command]
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw StorageError(.io, "shell", reason: command) }
    return String(decoding: data, as: UTF8.self)
}

/// A tar of the given files, made with GNU tar.
func tar(_ files: [String: String], whiteouts: [String] = []) throws -> Data {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("oci-src-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for (name, content) in files {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(content.utf8).write(to: url)
    }
    for name in whiteouts {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: url.path, contents: Data())
    }
    let out = dir.path + ".tar"
    defer { try? FileManager.default.removeItem(atPath: out) }
    try shell("tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C \(dir.path) -cf \(out) .")
    return try Data(contentsOf: URL(fileURLWithPath: out))
}

final class TestStore {
    let root: String
    let driver: OverlayDriver

    init() throws {
        root = "/tmp/strata-oci-\(UUID().uuidString.prefix(8))"
        driver = try OverlayDriver(home: FilePath(root + "/home"), runHome: FilePath(root + "/run"))
    }

    deinit {
        try? driver.cleanup()
        for entry in Mounts.mountTable() where entry.mountPoint.hasPrefix(root) {
            try? Mounts.unmount(FilePath(entry.mountPoint), flags: .detach)
        }
        try? FileManager.default.removeItem(atPath: root)
    }
}

@Suite("OCI import", .serialized)
struct OCIImportTests {
    @Test("an image imports as a chain named by chain IDs, whiteouts applied, and is reused")
    func importChain() throws {
        let store = try TestStore()
        let layout = try LayoutBuilder(URL(fileURLWithPath: store.root + "/layout"))
        let base = try tar(["etc/os-release": "ID=test\n", "etc/motd": "hi\n"])
        let top = try tar(["usr/bin/tool": "#!/bin/sh\n"], whiteouts: ["etc/.wh.motd"])
        try layout.image(layers: [base, top], tag: "v1")

        let importer = OCIImporter(reference: layout.root.path + ":v1")
        let layers = try importer.layers()
        #expect(layers.count == 2)
        #expect(layers[0].chainID == LayoutBuilder.digest(base))
        let chain1 = LayoutBuilder.digest(Data((layers[0].chainID + " " + LayoutBuilder.digest(top)).utf8))
        #expect(layers[1].chainID == chain1)

        let id = try importer.importImage(into: store.driver)
        #expect(id.rawValue == String(chain1.dropFirst(7)))
        let merged = try store.driver.get(id, options: MountOptions(readOnly: true))
        defer { try? store.driver.put(id) }
        #expect(try String(contentsOfFile: merged.string + "/etc/os-release", encoding: .utf8) == "ID=test\n")
        #expect(FileManager.default.fileExists(atPath: merged.string + "/usr/bin/tool"))
        #expect(!FileManager.default.fileExists(atPath: merged.string + "/etc/motd"))

        var reused: [Bool] = []
        _ = try importer.importImage(into: store.driver) { _, wasReused in reused.append(wasReused) }
        #expect(reused == [true, true])
    }

    @Test("a blob whose digest does not match is refused and nothing stays behind")
    func digestMismatch() throws {
        let store = try TestStore()
        let layout = try LayoutBuilder(URL(fileURLWithPath: store.root + "/layout"))
        let base = try tar(["a": "1"])
        let top = try tar(["b": "2"])
        try layout.image(layers: [base, top])
        // Corrupt the top layer's blob in place.
        let manifestLayers = try OCIImporter(reference: layout.root.path).layers()
        let blob = layout.root.appendingPathComponent("blobs/sha256/" + manifestLayers[1].descriptor.digest.dropFirst(7))
        var bytes = try Data(contentsOf: blob)
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: blob)

        #expect {
            _ = try OCIImporter(reference: layout.root.path).importImage(into: store.driver)
        } throws: { error in
            (error as? StorageError)?.code == .corrupt && "\(error)".contains("digest")
        }
        #expect(try store.driver.listLayers().isEmpty, "the first layer was left half-imported")
    }

    @Test("a diff ID that does not match the uncompressed layer is refused")
    func diffIDMismatch() throws {
        let store = try TestStore()
        let layout = try LayoutBuilder(URL(fileURLWithPath: store.root + "/layout"))
        let base = try tar(["a": "1"])
        try layout.image(layers: [base], diffIDs: [LayoutBuilder.digest(Data("something else".utf8))])
        #expect(throws: StorageError.self) { _ = try OCIImporter(reference: layout.root.path).importImage(into: store.driver) }
        #expect(try store.driver.listLayers().isEmpty)
    }

    @Test("a missing blob, an unknown tag and an unsupported media type are clear errors")
    func clearErrors() throws {
        let store = try TestStore()
        let layout = try LayoutBuilder(URL(fileURLWithPath: store.root + "/layout"))
        try layout.image(layers: [try tar(["a": "1"])], tag: "v1", mediaType: "application/vnd.example.squashfs")
        #expect {
            _ = try OCIImporter(reference: layout.root.path + ":v1").layers()
        } throws: { "\($0)".contains("unsupported layer media type application/vnd.example.squashfs") }
        #expect {
            _ = try OCIImporter(reference: layout.root.path + ":v2").layers()
        } throws: { "\($0)".contains("no image tagged 'v2' (tags: v1)") }

        let other = try LayoutBuilder(URL(fileURLWithPath: store.root + "/other"))
        try other.image(layers: [try tar(["a": "1"])])
        let layers = try OCIImporter(reference: other.root.path).layers()
        try FileManager.default.removeItem(at: other.root.appendingPathComponent("blobs/sha256/" + layers[0].descriptor.digest.dropFirst(7)))
        #expect {
            _ = try OCIImporter(reference: other.root.path).importImage(into: store.driver)
        } throws: { "\($0)".contains("missing") }
        #expect(try store.driver.listLayers().isEmpty)
    }

    @Test("an image made by umoci imports and mounts to the tree umoci unpacks",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/umoci"), "needs umoci (make test installs it)"))
    func umociImage() throws {
        let store = try TestStore()
        let layout = store.root + "/umoci"
        let bundle = store.root + "/bundle"
        try shell("""
            set -e
            umoci init --layout \(layout)
            umoci new --image \(layout):t
            umoci unpack --image \(layout):t \(bundle)
            mkdir -p \(bundle)/rootfs/etc \(bundle)/rootfs/opt/app
            echo one > \(bundle)/rootfs/etc/one
            echo gone > \(bundle)/rootfs/opt/app/gone
            ln -s ../etc/one \(bundle)/rootfs/opt/link
            umoci repack --image \(layout):t \(bundle)
            rm -rf \(bundle)
            umoci unpack --image \(layout):t \(bundle)
            rm \(bundle)/rootfs/opt/app/gone
            echo two > \(bundle)/rootfs/etc/two
            chmod 4755 \(bundle)/rootfs/etc/two
            umoci repack --image \(layout):t \(bundle)
            rm -rf \(bundle)
            umoci unpack --image \(layout):t \(bundle)
            """)
        let id = try OCIImporter(reference: layout + ":t").importImage(into: store.driver)
        let merged = try store.driver.get(id, options: MountOptions(readOnly: true))
        defer { try? store.driver.put(id) }
        let expected = try shell("cd \(bundle)/rootfs && find . -printf '%p %y %m %U:%G %s %l\\n' | sort")
        let actual = try shell("cd \(merged.string) && find . -printf '%p %y %m %U:%G %s %l\\n' | sort")
        #expect(actual == expected)
    }
}
