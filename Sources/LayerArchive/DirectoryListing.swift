import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The names of one directory, sorted by their bytes (as `strcmp` orders them), kept in one
/// buffer: a walk of 100,000 files makes no allocation per name, and names that are not UTF-8
/// stay exact.
struct DirectoryListing {
    /// The names, each followed by a NUL.
    private var bytes: [CChar] = []
    /// Each name's offset and length in `bytes`, and its kind from `d_type`.
    private var records: [(offset: Int32, length: Int32, kind: FileKind)] = []

    /// Reads every entry of the open directory `directory` except `.` and `..` (with
    /// StrataSystem's getdents64 loop, which moves the descriptor's offset; `*at` calls on it
    /// are unaffected).
    init(reading directory: FileDescriptor, path: @autoclosure () -> String) throws(StorageError) {
        bytes.reserveCapacity(4096)
        try attempt("read directory", path()) { () throws(Errno) in
            try directory.forEachDirectoryEntryName { name, _, kind in
                let length = strlen(name)
                records.append((Int32(bytes.count), Int32(length), kind))
                bytes.append(contentsOf: UnsafeBufferPointer(start: name, count: length + 1))
            }
        }
        bytes.withUnsafeBufferPointer { b in
            let base = b.baseAddress!
            records.sort { l, r in
                let common = Int(min(l.length, r.length))
                let order = memcmp(base + Int(l.offset), base + Int(r.offset), common)
                return order != 0 ? order < 0 : l.length < r.length
            }
        }
    }

    /// The number of names.
    var count: Int { records.count }

    /// The kind `d_type` gave for name `index` (`.unknown` where the filesystem does not say).
    func kind(_ index: Int) -> FileKind { records[index].kind }

    /// Calls `body` with name `index` as a NUL-terminated C string and its length.
    @inline(__always)
    func withName<R, E: Error>(_ index: Int, _ body: (UnsafePointer<CChar>, Int) throws(E) -> R) throws(E) -> R {
        let record = records[index]
        let result: Result<R, E> = bytes.withUnsafeBufferPointer { b in
            do throws(E) {
                return .success(try body(b.baseAddress! + Int(record.offset), Int(record.length)))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Name `index` as bytes (without the NUL).
    func nameBytes(_ index: Int) -> ArraySlice<UInt8> {
        let record = records[index]
        return bytes[Int(record.offset)..<Int(record.offset + record.length)].withUnsafeBufferPointer {
            ArraySlice(UnsafeRawBufferPointer($0).bindMemory(to: UInt8.self))
        }
    }

    /// Whether the listing holds `name` (binary search over the sorted names).
    func contains(_ name: UnsafePointer<CChar>, length: Int) -> Bool {
        bytes.withUnsafeBufferPointer { b in
            var low = 0, high = records.count
            while low < high {
                let middle = (low + high) / 2
                let record = records[middle]
                let common = min(Int(record.length), length)
                var order = memcmp(b.baseAddress! + Int(record.offset), name, common)
                if order == 0 { order = Int32(Int(record.length) - length).signum() }
                if order == 0 { return true }
                if order < 0 { low = middle + 1 } else { high = middle }
            }
            return false
        }
    }
}

extension FileStatus {
    /// Whether this is an overlay whiteout: a character device 0/0.
    var isOverlayWhiteout: Bool { kind == .characterDevice && specialDevice == 0 }
}
