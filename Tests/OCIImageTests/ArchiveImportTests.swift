import Foundation
import GraphDriver
@testable import OCIImage
import Overlay
import StrataSystem
import SystemPackage
import Testing

/// Importing the archives podman and skopeo write: docker-archive, oci-archive, oci-dir.
@Suite("Archive import", .serialized,
       .enabled(if: getuid() == 0, "needs root: overlay mounts, and a mount namespace for podman's private store"),
       .enabled(if: ImageTools.available, "needs podman, skopeo, umoci and unshare (make test installs them)"))
struct ArchiveImportTests {
    static let rootfsFiles = ["etc/os-release": "ID=test\n", "etc/motd": "hello\n", "usr/bin/tool": "#!/bin/sh\necho tool\n"]

    /// A podman image of `rootfsFiles`, saved as docker-archive (`docker`), oci-archive (`oci`)
    /// and oci-dir (`ocidir`) under `store.root`; the file names say nothing of the format.
    func podmanImage(_ store: TestStore) throws -> (docker: String, oci: String, ocidir: String) {
        let tools = try ImageTools(directory: store.root + "/tools")
        let dir = store.root
        try ImageTools.rootfs(Self.rootfsFiles, at: dir + "/rootfs.tar")
        try tools.run("""
            $PODMAN import \(dir)/rootfs.tar localhost/minbase:1 >/dev/null
            $PODMAN save -o \(dir)/a localhost/minbase:1
            $PODMAN save --format oci-archive -o \(dir)/b localhost/minbase:1
            $PODMAN save --format oci-dir -o \(dir)/c localhost/minbase:1
            """)
        return (dir + "/a", dir + "/b", dir + "/c")
    }

    /// A two-layer image made with umoci (the second layer deletes /etc/gone: a whiteout), copied
    /// by skopeo to a docker-archive and an oci-archive; `bundle` holds umoci's unpacked tree.
    func twoLayerImage(_ store: TestStore) throws -> (docker: String, oci: String, bundle: String) {
        let tools = try ImageTools(directory: store.root + "/tools")
        let dir = store.root
        try tools.run("""
            umoci init --layout \(dir)/layout
            umoci new --image \(dir)/layout:t
            umoci unpack --image \(dir)/layout:t \(dir)/bundle >/dev/null
            mkdir -p \(dir)/bundle/rootfs/etc \(dir)/bundle/rootfs/opt
            echo one > \(dir)/bundle/rootfs/etc/one
            echo gone > \(dir)/bundle/rootfs/etc/gone
            ln -s ../etc/one \(dir)/bundle/rootfs/opt/link
            umoci repack --image \(dir)/layout:t \(dir)/bundle
            rm -rf \(dir)/bundle
            umoci unpack --image \(dir)/layout:t \(dir)/bundle >/dev/null
            rm \(dir)/bundle/rootfs/etc/gone
            echo two > \(dir)/bundle/rootfs/etc/two
            umoci repack --image \(dir)/layout:t \(dir)/bundle
            rm -rf \(dir)/bundle
            umoci unpack --image \(dir)/layout:t \(dir)/bundle >/dev/null
            skopeo copy -q oci:\(dir)/layout:t docker-archive:\(dir)/two-docker.tar:localhost/two:1
            skopeo copy -q oci:\(dir)/layout:t oci-archive:\(dir)/two-oci.tar:localhost/two:1
            """)
        return (dir + "/two-docker.tar", dir + "/two-oci.tar", dir + "/bundle/rootfs")
    }

    /// `find` listing of the layer's merged tree.
    func listing(_ store: TestStore, _ id: LayerID) throws -> String {
        let merged = try store.driver.get(id, options: MountOptions(readOnly: true))
        defer { try? store.driver.put(id) }
        return try shell("cd \(merged.string) && find . -printf '%p %y %m %U:%G %s %l\\n' | sort")
    }

    @Test("podman's docker-archive, oci-archive and oci-dir import to the same layers, by path and by skopeo reference")
    func podmanFormats() throws {
        let store = try TestStore()
        let image = try podmanImage(store)
        let top = try OCIImporter(reference: image.docker).importImage(into: store.driver)
        let merged = try store.driver.get(top, options: MountOptions(readOnly: true))
        for (name, content) in Self.rootfsFiles {
            #expect(try String(contentsOfFile: merged.string + "/" + name, encoding: .utf8) == content)
        }
        try store.driver.put(top)

        // The oci-archive's layer is gzip, the docker-archive's plain: the same diff ID, so
        // the same chain ID, and the layer is reused.
        let references = [
            image.oci, image.ocidir,
            "docker-archive:\(image.docker)", "docker-archive:\(image.docker):localhost/minbase:1",
            "docker-archive:\(image.docker):@0", "docker-archive:\(image.docker):minbase:1",
            "oci-archive:\(image.oci):localhost/minbase:1", "oci:\(image.ocidir):localhost/minbase:1",
            "\(image.ocidir):localhost/minbase:1", "\(image.oci):localhost/minbase:1",
        ]
        for reference in references {
            var reused: [Bool] = []
            let id = try OCIImporter(reference: reference).importImage(into: store.driver) { _, wasReused in reused.append(wasReused) }
            #expect(id == top, "\(reference)")
            #expect(reused == [true], "\(reference)")
        }
        #expect(try store.driver.listLayers() == [top])

        for reference in ["docker-archive:\(image.docker):localhost/other:2", "oci-archive:\(image.oci):other:2",
                          "docker-archive:\(image.docker):@3"] {
            #expect(Comment(rawValue: reference)) {
                _ = try OCIImporter(reference: reference).layers()
            } throws: { error in
                (error as? StorageError)?.code == .notFound && "\(error)".contains("localhost/minbase:1")
            }
        }
    }

    @Test("a two-layer image with a whiteout, copied by skopeo, imports from both archives to umoci's tree")
    func skopeoTwoLayers() throws {
        let store = try TestStore()
        let image = try twoLayerImage(store)
        let expected = try shell("cd \(image.bundle) && find . -printf '%p %y %m %U:%G %s %l\\n' | sort")
        #expect(!expected.contains("gone"))
        #expect(expected.contains("./etc/two"))

        let fromDocker = try OCIImporter(reference: "docker-archive:\(image.docker):localhost/two:1").importImage(into: store.driver)
        #expect(try store.driver.listLayers().count == 2)
        #expect(try listing(store, fromDocker) == expected)

        let other = try TestStore()
        let fromOCI = try OCIImporter(reference: image.oci).importImage(into: other.driver)
        #expect(fromOCI == fromDocker)
        #expect(try listing(other, fromOCI) == expected)
    }

    @Test("a docker-archive with gzip layers, its members in another order, imports, and so do compressed archives")
    func gzipDockerArchive() throws {
        let store = try TestStore()
        let image = try twoLayerImage(store)
        let plainTop = try OCIImporter(reference: image.docker).layers().last!.layerID
        // Rewrite it as older tools do: `<n>/layer.tar`, gzip, and manifest.json first.
        let work = store.root + "/rewrite"
        try shell("""
            set -e
            mkdir -p \(work)/x && cd \(work)/x && tar -xf \(image.docker)
            python3 - <<'EOF'
            import json, os, subprocess
            m = json.load(open('manifest.json'))
            layers = []
            for n, name in enumerate(m[0]['Layers']):
                os.makedirs('../y/%d' % n)
                with open('../y/%d/layer.tar' % n, 'wb') as out:
                    out.write(subprocess.run(['gzip', '-c', '-n', name], check=True, stdout=subprocess.PIPE).stdout)
                layers.append('%d/layer.tar' % n)
            m[0]['Layers'] = layers
            json.dump(m, open('../y/manifest.json', 'w'))
            os.rename(m[0]['Config'], '../y/' + m[0]['Config'])
            EOF
            cd \(work)/y && tar -cf \(work)/gz-layers.tar manifest.json 1 $(ls | grep -v manifest.json | grep json) 0
            gzip -c \(image.docker) > \(work)/whole.tar.gz
            """)
        #expect(try shell("tar -tf \(work)/gz-layers.tar | head -1") == "manifest.json\n")
        let top = try OCIImporter(reference: work + "/gz-layers.tar").importImage(into: store.driver)
        #expect(top == plainTop)
        let expected = try shell("cd \(image.bundle) && find . -printf '%p %y %m %U:%G %s %l\\n' | sort")
        #expect(try listing(store, top) == expected)


        // Compressed as a whole (`docker save | gzip`), gzip layers inside gzip, a zstd
        // oci-archive: read in passes through the decompressor, to the same layers.
        try shell("""
            gzip -c \(work)/gz-layers.tar > \(work)/gz-in-gz.tar.gz
            zstd -q -c \(image.oci) > \(work)/oci.tar.zst
            head -c $(( $(stat -c %s \(work)/whole.tar.gz) / 2 )) \(work)/whole.tar.gz > \(work)/cut.tar.gz
            """)
        for archive in ["whole.tar.gz", "gz-in-gz.tar.gz", "oci.tar.zst"] {
            let other = try TestStore()
            let id = try OCIImporter(reference: work + "/" + archive).importImage(into: other.driver)
            #expect(id == plainTop, "\(archive)")
            #expect(try listing(other, id) == expected, "\(archive)")
        }
        #expect {
            _ = try OCIImporter(reference: work + "/cut.tar.gz").importImage(into: store.driver)
        } throws: { error in
            (error as? StorageError)?.code == .malformedArchive && "\(error)".contains("truncated")
        }
        #expect(try store.driver.listLayers().count == 2)
    }

    @Test("a truncated archive is a clear error and imports nothing")
    func truncated() throws {
        let store = try TestStore()
        let image = try twoLayerImage(store)
        for archive in [image.docker, image.oci] {
            let size = try FileManager.default.attributesOfItem(atPath: archive)[.size] as! Int
            for cut in [size / 2, size - 1024 - 100] {
                let cutPath = archive + ".cut"
                try shell("head -c \(cut) \(archive) > \(cutPath)")
                #expect("\(archive) at \(cut)") {
                    _ = try OCIImporter(reference: cutPath).importImage(into: store.driver)
                } throws: { error in
                    (error as? StorageError)?.code == .malformedArchive && "\(error)".contains("truncated")
                }
                #expect(try store.driver.listLayers().isEmpty)
            }
        }
    }

    @Test("a layer whose bytes do not match its digest is refused, and the store keeps only what it had")
    func wrongLayerDigest() throws {
        let store = try TestStore()
        let podman = try podmanImage(store)
        let before = [try OCIImporter(reference: podman.docker).importImage(into: store.driver)]
        let image = try twoLayerImage(store)

        // docker-archive: the top layer's file content "two" becomes "twX" (same size).
        var docker = try Data(contentsOf: URL(fileURLWithPath: image.docker))
        let needle = Data("two\n".utf8)
        let at = try #require(docker.range(of: needle, options: .backwards))
        docker[at.lowerBound + 2] = UInt8(ascii: "X")
        try docker.write(to: URL(fileURLWithPath: store.root + "/bad-docker.tar"))

        // oci-archive: a byte in the middle of the top layer's gzip blob.
        let layers = try OCIImporter(reference: image.oci).layers()
        let archive = try ImageArchive(path: image.oci)
        let blob = try #require(try archive.contents(of: OCIBlobStore.blobName(layers[1].descriptor.digest)))
        var oci = try Data(contentsOf: URL(fileURLWithPath: image.oci))
        let blobAt = try #require(oci.range(of: blob))
        oci[blobAt.lowerBound + blob.count / 2] ^= 0x55
        try oci.write(to: URL(fileURLWithPath: store.root + "/bad-oci.tar"))

        for bad in ["bad-docker.tar", "bad-oci.tar"] {
            #expect(Comment(rawValue: bad)) {
                _ = try OCIImporter(reference: store.root + "/" + bad).importImage(into: store.driver)
            } throws: { error in
                (error as? StorageError)?.code == .corrupt && "\(error)".contains("digest is sha256:")
            }
            #expect(try store.driver.listLayers() == before, "\(bad): the first layer stayed behind")
        }
    }
}
