import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Reads a layer's changes from its overlay upper directory (`diff/`), checking its lower
/// directories only to tell an addition from a modification:
///
/// - a whiteout (character device 0/0) is a deletion;
/// - an opaque directory replaced whatever was below it: it and everything in it are additions;
/// - any other entry is a modification when a lower layer shows that path, else an addition.
enum OverlayChangeScanner {
    static func changes(layer: FilePath, lowers: [FilePath]) throws(StorageError) -> [Change] {
        try attempt("list changes", layer) { () throws(Errno) in
            let root = try FileDescriptor.openDirectory(layer)
            defer { root.closeQuietly() }
            var lowerDirectories: [FileDescriptor] = []
            defer { lowerDirectories.forEach { $0.closeQuietly() } }
            for lower in lowers { lowerDirectories.append(try FileDescriptor.openDirectory(lower)) }
            var result: [Change] = []
            try scan(root, path: "", lowers: lowerDirectories, replaced: false, into: &result)
            return result.sorted()
        }
    }

    private static func scan(_ dir: FileDescriptor, path: String, lowers: [FileDescriptor], replaced: Bool,
                             into result: inout [Change]) throws(Errno) {
        for entry in try dir.directoryEntries() {
            let name = FilePath(entry.name)
            let full = path + "/" + entry.name
            let st = try dir.status(at: name)
            if st.kind == .characterDevice && st.specialDevice == 0 {
                result.append(Change(path: full, kind: .delete))
                continue
            }
            var opaque = false
            if st.kind == .directory {
                opaque = (try? dir.extendedAttribute("trusted.overlay.opaque", at: name)) == Array("y".utf8)
            }
            let kind: Change.Kind = (replaced || opaque || !existsBelow(full, lowers)) ? .add : .modify
            result.append(Change(path: full, kind: kind))
            if st.kind == .directory {
                let child = try dir.openDirectory(at: name)
                defer { child.closeQuietly() }
                try scan(child, path: full, lowers: lowers, replaced: replaced || opaque, into: &result)
            }
        }
    }

    /// Whether the lower layers, top first, show `path`: the first one holding it decides,
    /// and a whiteout there means it was deleted.
    private static func existsBelow(_ path: String, _ lowers: [FileDescriptor]) -> Bool {
        let relative = FilePath(String(path.dropFirst()))
        for lower in lowers {
            guard let st = try? lower.status(at: relative) else { continue }
            return !(st.kind == .characterDevice && st.specialDevice == 0)
        }
        return false
    }
}
