// libFuzzer target: the parsers of user input. The first byte picks the parser, the rest is
// the text. Every parser must either accept or throw a `StorageError` with a message; a value
// it accepts must render back to text that parses to the same value.
//
// Built with `scripts/fuzz/build.sh`; without FUZZING, `ParseFuzz FILE…` replays inputs.

import FuzzSupport
import GraphDriver

#if canImport(Glibc)
import Glibc
#endif

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

func parseOne(_ data: UnsafeRawBufferPointer) {
    guard let selector = data.first else { return }
    let text = String(decoding: data.dropFirst(), as: UTF8.self)
    do throws(StorageError) {
        switch selector % 8 {
        case 0:
            let map = try IDMap(parsing: text)
            check(map.size > 0, "IDMap accepted an empty range: \(text)")
            check(try IDMap(parsing: map.description) == map, "IDMap round trip: \(text)")
        case 1:
            let ranges = try IDMap.parseList(text)
            let again = try IDMap.parseList(ranges.map(\.description).joined(separator: ","))
            check(again == ranges, "IDMap list round trip: \(text)")
            let mappings = IDMappings(uidMap: ranges, gidMap: ranges)
            try mappings.validate()
            _ = mappings.rootUID
            _ = mappings.isContiguous
        case 2:
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            _ = try DriverOptions(parsing: lines)
        case 3:
            let options = try MountOption.parseList(text)
            for option in options {
                check(!option.description.contains(","), "a mount option holds a comma: \(text)")
            }
        case 4:
            let size = try QuotaLimits.parseSize(text)
            check(size > 0 || text.contains("0"), "size 0 from \(text)")
        case 5:
            // (MCS categories hold commas: `s0:c1,c2`; the mount option quotes them.)
            let context = try SELinuxContext(text)
            check(context.rawValue.split(separator: ":", omittingEmptySubsequences: false).count >= 3,
                  "a context without user:role:type: \(text)")
        case 6:
            let id = try LayerID(text)
            check(!id.rawValue.contains("/") && id.rawValue != "." && id.rawValue != "..", "unsafe layer ID: \(text)")
            check(!id.rawValue.isEmpty, "empty layer ID")
        default:
            _ = try MountOption(parsing: text)
        }
    } catch {
        check(!error.description.isEmpty, "an error without a message")
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    parseOne(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_cdecl("ParseFuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runLibFuzzer(argc, argv, fuzzOne)
}
#else
@main
struct ParseFuzzReproducer {
    static func main() {
        replayInputs(CommandLine.arguments.dropFirst()) { parseOne($0) }
    }
}
#endif
