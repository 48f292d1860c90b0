// libFuzzer target: one tar stream (plain, gzip or zstd) applied to a fresh layer directory.
//
// Each input is applied to `<box>/layer` in a new box under a scratch root. Afterwards the box
// must hold nothing but `layer` (the applier's sibling staging directory is gone), and the
// scratch root nothing but the box: a hostile entry (`../x`, an absolute path, a write through a
// symlink or a hard link pointing out) must not have written anywhere else.
//
// Built with `scripts/fuzz/build.sh` (-DFUZZING, -sanitize=fuzzer,address). Without FUZZING it
// is a reproducer: `ApplyFuzz FILE…` runs each file through the same body.

import GraphDriver
import LayerArchive
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

func entries(_ path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}

func removeTree(_ path: String) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    if (st.st_mode & S_IFMT) == S_IFDIR {
        chmod(path, 0o700)
        for name in entries(path) { removeTree(path + "/" + name) }
        rmdir(path)
    } else {
        unlink(path)
    }
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
    let inBox = entries(box)
    if inBox != ["layer"] {
        fatalError("apply wrote outside the layer: \(box) holds \(inBox)")
    }
    let inRoot = entries(scratchRoot)
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

/// libFuzzer's driver, entered explicitly: SwiftPM links an executable's entry point as
/// `<target>_main`, so libFuzzer's own `main` is not the one that runs.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<Int32>,
                     _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                     _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@_cdecl("ApplyFuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments, fuzzOne)
}
#else
@main
struct ApplyFuzzReproducer {
    static func main() {
        for path in CommandLine.arguments.dropFirst() {
            guard let file = fopen(path, "rb") else { print("cannot open \(path)"); continue }
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = fread(&buffer, 1, buffer.count, file)
                if n <= 0 { break }
                bytes += buffer[0..<n]
            }
            fclose(file)
            bytes.withUnsafeBytes { applyOne($0) }
            print("ok \(path)")
        }
        removeTree(scratchRoot)
    }
}
#endif
