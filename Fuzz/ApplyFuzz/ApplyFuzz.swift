// libFuzzer target: one tar stream (plain, gzip or zstd) applied to a fresh layer directory.
//
// Each input is applied to `<box>/layer` in a new box under a scratch root. Afterwards the box
// must hold nothing but `layer` (the applier's sibling staging directory is gone), and the
// scratch root nothing but the box: a hostile entry (`../x`, an absolute path, a write through a
// symlink or a hard link pointing out) must not have written anywhere else.
//
// Built with `scripts/fuzz/build.sh` (-DFUZZING, -sanitize=fuzzer,address). Without FUZZING it
// is a reproducer: `ApplyFuzz FILE…` runs each file through the same body.

import FuzzSupport
import GraphDriver
import LayerArchive
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The scratch root: one per process, removed and remade around each input.
nonisolated(unsafe) var scratchRoot: String = {
    var template = Array("/tmp/strata-applyfuzz-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { fatalError("mkdtemp failed") }
    return String(cString: made)
}()

nonisolated(unsafe) var sequence = 0

func removeTree(_ path: String) {
    try? FileDescriptor.currentWorkingDirectory.removeTree(at: FilePath(path))
}

func applyOne(_ data: UnsafeRawBufferPointer) {
    sequence += 1
    let box = "\(scratchRoot)/box\(sequence)"
    guard mkdir(box, 0o700) == 0, mkdir(box + "/layer", 0o755) == 0 else { fatalError("mkdir failed") }
    // The stream comes from an unlinked temporary file (outside the scratch root).
    var template = Array("/tmp/strata-applyfuzz-input-XXXXXX".utf8CString)
    let fd = mkstemp(&template)
    precondition(fd >= 0)
    template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
    var offset = 0
    while offset < data.count {
        let n = write(fd, data.baseAddress! + offset, data.count - offset)
        precondition(n > 0)
        offset += n
    }
    lseek(fd, 0, SEEK_SET)
    let input = FileDescriptor(rawValue: fd)
    _ = try? LayerApplier.apply(from: input, into: FilePath(box + "/layer"),
                                options: ApplyOptions(ignoreChownErrors: true, writerThreads: 1))
    close(fd)
    let inBox = directoryNames(box)
    if inBox != ["layer"] {
        fatalError("apply wrote outside the layer: \(box) holds \(inBox)")
    }
    let inRoot = directoryNames(scratchRoot)
    if inRoot != ["box\(sequence)"] {
        fatalError("apply wrote outside the layer: \(scratchRoot) holds \(inRoot)")
    }
    removeTree(box)
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    applyOne(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_cdecl("ApplyFuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runLibFuzzer(argc, argv, fuzzOne)
}
#else
@main
struct ApplyFuzzReproducer {
    static func main() {
        replayInputs(CommandLine.arguments.dropFirst()) { applyOne($0) }
        removeTree(scratchRoot)
    }
}
#endif
