import Foundation
import LayerArchive
import StrataSystem
import SystemPackage
import Testing

/// The interop tests pass when two trees (or two tar listings) have no differences, so the
/// comparisons themselves must see every kind of difference they claim to check.
@Suite(
    "The interop comparisons",
    .enabled(if: Tool.isRoot, "needs root: device nodes, owners, trusted.overlay xattrs"),
    .enabled(if: Tool.haveFixtureTools,
             "the fixture needs setfattr (attr), setcap (libcap2-bin), setfacl (acl), mknod, tar and gzip"))
struct ComparisonTests {
    /// Makes the upper fixture in `a`, an exact copy in `b`, then changes one thing of each kind
    /// in `b`; returns the expected `path: what` prefixes of the difference lines.
    func mutatedCopy(in scratch: Scratch) throws -> (a: String, b: String, hits: [String]) {
        let a = try scratch.directory("a")
        try makeLayerTree("upper", in: a)
        let b = scratch.file("b")
        try run("/bin/cp", ["-a", a, b])
        #expect(try Tree.read(a).differences(from: Tree.read(b)) == [], "cp -a should make an identical tree")
        let q = quoted(b)
        try sh("""
            cd \(q)
            chmod 0600 plain
            chown 1001 owned
            printf 'X' | dd of=big.bin bs=1 seek=100 conv=notrunc status=none && touch -r ../a/big.bin big.bin
            setfattr -x user.dir xdir
            setfattr -x trusted.overlay.opaque opq
            touch -h -d '2001-01-01' link-rel
            rm links/b && cp -p links/a links/b
            rm chardev && mknod -m 0666 chardev c 1 5 && touch -r ../a/chardev chardev
            rm link-abs && ln -s /etc/group link-abs && touch -h -r ../a/link-abs link-abs
            rm empty
            touch -d '2001-01-01' extra
            rm removed && : > removed && chmod 0 removed
            """)
        return (a, b, [
            "plain: mode", "owned: owner", "big.bin: content", "xdir: xattr user.dir",
            "opq: xattr trusted.overlay.opaque", "link-rel: mtime", "links/b: hardlinks",
            "links/a: hardlinks", "chardev: device", "link-abs: link target", "empty: missing",
            "extra: unexpected", "removed: kind",
        ])
    }

    @Test("The tree comparison reports each kind of difference")
    func treeComparisonSeesEachDifference() throws {
        let scratch = Scratch("compare")
        defer { scratch.close() }
        let (a, b, hits) = try mutatedCopy(in: scratch)
        let differences = try Tree.read(a).differences(from: Tree.read(b))
        for hit in hits {
            #expect(differences.contains { $0.hasPrefix(hit) }, "no difference \"\(hit)…\" in:\n\(differences.joined(separator: "\n"))")
        }
    }

    @Test("The tar listing comparison reports each kind of difference")
    func listingComparisonSeesEachDifference() throws {
        let scratch = Scratch("compare-tar")
        defer { scratch.close() }
        let (a, b, _) = try mutatedCopy(in: scratch)
        let tarA = scratch.file("a.tar"), tarB = scratch.file("b.tar")
        try strataExport(layer: a, lowers: [], to: tarA)
        try strataExport(layer: b, lowers: [], to: tarB)
        let listingA = try tarListing(tarA)
        #expect(listingDifferences(expected: listingA, actual: try tarListing(tarA)) == [])
        let differences = listingDifferences(expected: listingA, actual: try tarListing(tarB))
        let hits = [
            "plain: mode", "owned: owner", "big.bin: content", "xdir/: xattr user.dir", "link-rel: mtime",
            "links/b: type", "chardev: device", "link-abs: link", "missing entries: [\".wh.removed\", \"empty\"]",
            "unexpected entries: [\"extra\", \"removed\"]",
        ]
        for hit in hits {
            #expect(differences.contains { $0.hasPrefix(hit) }, "no difference \"\(hit)…\" in:\n\(differences.joined(separator: "\n"))")
        }
        // Same names in another order is a difference too.
        var reordered = listingA
        reordered.swapAt(0, 1)
        #expect(listingDifferences(expected: listingA, actual: reordered).contains { $0.hasPrefix("entry order differs") })
    }
}
