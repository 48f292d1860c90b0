// What the two libFuzzer targets share: the reproducer's loop over input files and, in a
// fuzzing build, the call into libFuzzer's driver.

import StrataSystem
import SystemPackage

/// Runs `body` on the bytes of each named file and prints `ok FILE` after each (the plain
/// build's reproducer: `ApplyFuzz FILE…`).
public func replayInputs(_ paths: some Sequence<String>, _ body: (UnsafeRawBufferPointer) -> Void) {
    for path in paths {
        let bytes: [UInt8]
        do throws(Errno) {
            let fd = try FileDescriptor.currentWorkingDirectory.open(at: FilePath(path), .readOnly)
            defer { fd.closeQuietly() }
            bytes = try fd.readToEnd()
        } catch {
            print("cannot read \(path): \(error)")
            continue
        }
        bytes.withUnsafeBytes { body($0) }
        print("ok \(path)")
    }
}

/// The names in a directory, sorted, without `.` and `..`; empty when it cannot be read.
public func directoryNames(_ path: String) -> [String] {
    guard let dir = try? FileDescriptor.openDirectory(FilePath(path)) else { return [] }
    defer { dir.closeQuietly() }
    return ((try? dir.directoryEntries()) ?? []).map(\.name).sorted()
}

#if FUZZING
/// libFuzzer's driver (linked in by `-sanitize=fuzzer`).
@_silgen_name("LLVMFuzzerRunDriver")
func llvmFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

/// Hands the process to libFuzzer's driver with `callback` as the test function. A target calls
/// it from its `<target>_main` entry point: SwiftPM links an executable's entry point under that
/// name, so libFuzzer's own `main` is not the one that runs.
public func runLibFuzzer(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32 {
    var count = argc
    var arguments = argv
    return llvmFuzzerRunDriver(&count, &arguments, callback)
}
#endif
