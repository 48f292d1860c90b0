import Foundation
import GraphDriver
@testable import OCIImage
import StrataSystem
import SystemPackage
import Testing

/// The member index that image archives are read through (libarchive's headers, via
/// TarMembers), on tars GNU tar writes.
@Suite("Tar index")
struct TarIndexTests {
    let directory: String

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("strata-tarindex-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory + "/t", withIntermediateDirectories: true)
    }

    func index(_ tar: String) throws -> (ImageArchive, ArchiveIndex) {
        let archive = try ImageArchive(path: tar)
        return (archive, archive.index)
    }

    func text(_ archive: ImageArchive, _ name: String) throws -> String? {
        try archive.contents(of: name).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test("pax and GNU long names, hard and symbolic links, and ./ prefixes are found", arguments: ["pax", "gnu", "ustar"])
    func names(format: String) throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let long = String(repeating: "d", count: 120) + "/" + String(repeating: "f", count: 90) + ".json"
        try shell("""
            set -e
            cd \(directory)/t
            mkdir -p \(String(repeating: "d", count: 120)) sub
            printf long > \(long)
            printf plain > manifest.json
            ln manifest.json sub/hard.json
            ln -s ../manifest.json sub/link.json
            tar --format=\(format) -cf ../a.tar ./manifest.json sub \(long)
            """)
        let (archive, index) = try index(directory + "/a.tar")
        #expect(try text(archive, "manifest.json") == "plain")
        #expect(try text(archive, "./manifest.json") == "plain")
        #expect(try text(archive, "sub/hard.json") == "plain")
        #expect(try text(archive, "sub/link.json") == "plain")
        #expect(try text(archive, long) == "long")
        #expect(index.member("sub") == nil, "a directory holds no contents")
        #expect(!index.endMarkerMissing)
    }

    @Test("a file that is not a tar, a tar cut inside a member and one cut at a member's end are told apart")
    func damaged() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try shell("""
            set -e
            cd \(directory)/t
            head -c 3000 /dev/zero | tr '\\0' 'x' > big
            printf small > small
            tar --format=ustar -cf ../a.tar big small
            head -c 2000 ../a.tar > ../inside.tar
            head -c 3584 ../a.tar > ../boundary.tar
            head -c 3000000 /dev/zero | tr '\\0' 'y' > large
            tar --format=ustar -cf ../large.tar large small
            head -c 2000000 ../large.tar > ../large-inside.tar
            printf 'not a tar at all, just text that is long enough to fill a header%.0s' $(seq 20) > ../text
            """)
        #expect { _ = try ImageArchive(path: directory + "/inside.tar") } throws: { error in
            (error as? StorageError)?.code == .malformedArchive && "\(error)".contains("truncated")
        }
        // A member cut well past libarchive's read buffer: it seeks over the member, and the
        // pass must still see that the file ends inside it.
        #expect { _ = try ImageArchive(path: directory + "/large-inside.tar") } throws: { error in
            (error as? StorageError)?.code == .malformedArchive && "\(error)".contains("truncated")
        }
        #expect(try !ImageArchive(path: directory + "/large.tar").index.endMarkerMissing)
        let boundary = try ImageArchive(path: directory + "/boundary.tar")
        #expect(boundary.index.endMarkerMissing)
        #expect("\(boundary.missing("manifest.json", what: "manifest"))".contains("truncated"))
        #expect { _ = try ImageArchive(path: directory + "/text") } throws: { "\($0)".contains("not a tar archive") }
    }
}

/// Reading references as skopeo writes them, and plain paths with tags.
@Suite("Image references")
struct ImageReferenceTests {
    @Test("skopeo transports split at the first colon; a plain path splits where the path exists")
    func parsing() {
        let existing: Set<String> = ["oci", "img.tar", "dir/layout", "a:b"]
        func parse(_ text: String) -> ImageReference { ImageReference(parsing: text, exists: existing.contains) }
        #expect(parse("oci-archive:img.tar:localhost/minbase:1") == ImageReference(transport: .ociArchive, path: "img.tar", tag: "localhost/minbase:1"))
        #expect(parse("docker-archive:img.tar") == ImageReference(transport: .dockerArchive, path: "img.tar", tag: nil))
        #expect(parse("docker-archive:img.tar:@1") == ImageReference(transport: .dockerArchive, path: "img.tar", tag: "@1"))
        #expect(parse("oci:dir/layout:v1") == ImageReference(transport: .oci, path: "dir/layout", tag: "v1"))
        // The issue's case: a layout directory named `oci` whose image is `localhost/minbase:1`.
        #expect(parse("oci:localhost/minbase:1") == ImageReference(path: "oci", tag: "localhost/minbase:1"))
        #expect(parse("oci:oci:localhost/minbase:1") == ImageReference(transport: .oci, path: "oci", tag: "localhost/minbase:1"))
        #expect(parse("dir/layout:localhost/minbase:1") == ImageReference(path: "dir/layout", tag: "localhost/minbase:1"))
        #expect(parse("a:b") == ImageReference(path: "a:b", tag: nil))
        #expect(parse("a:b:c") == ImageReference(path: "a:b", tag: "c"))
        #expect(parse("img.tar") == ImageReference(path: "img.tar", tag: nil))
        // Nothing exists: the older reading, so the error names the likely path.
        #expect(parse("missing/layout:v2") == ImageReference(path: "missing/layout", tag: "v2"))
    }

    @Test("repository names match with and without the default registry")
    func tags() {
        #expect(ImageTag.matches("localhost/minbase:1", "minbase:1"))
        #expect(ImageTag.matches("docker.io/library/debian:12", "debian:12"))
        #expect(!ImageTag.matches("localhost/minbase:1", "minbase:2"))
        #expect(DockerArchiveReader.digest(inName: "blobs/sha256/" + String(repeating: "a", count: 64)) == "sha256:" + String(repeating: "a", count: 64))
        #expect(DockerArchiveReader.digest(inName: String(repeating: "b", count: 64) + ".tar") == "sha256:" + String(repeating: "b", count: 64))
        #expect(DockerArchiveReader.digest(inName: "0123/layer.tar") == nil)
    }
}
