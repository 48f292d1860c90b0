import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Applies layer tar streams to layer directories.
///
/// An apply either happens whole or not at all: the stream is extracted into a staging
/// directory beside the layer (holding, when the layer is not empty, a copy of it made of hard
/// links), and only when every entry is written is the staging directory swapped in with one
/// `renameat2(RENAME_EXCHANGE)`. A stream that is malformed, hostile or cut short leaves the
/// layer exactly as it was.
public enum LayerApplier {
    /// Reads a tar stream (plain, gzip or zstd) from `input` and applies it to the directory
    /// `layer`, which must exist.
    ///
    /// - Returns: the bytes of file content the stream held and the number of its entries.
    /// - Throws: `StorageError`, naming the entry and its offset in the stream when an entry is at
    ///   fault; the layer is then unchanged.
    public static func apply(
        from input: FileDescriptor, into layer: FilePath, options: ApplyOptions = ApplyOptions()
    ) throws(StorageError) -> ApplyResult {
        guard let name = layer.lastComponent else {
            throw StorageError(.invalidArgument, "apply diff", path: layer.string, reason: "the layer path has no name")
        }
        let parentPath = layer.removingLastComponent()
        let parent: FileDescriptor = try attempt("apply diff", parentPath) { () throws(Errno) in
            try FileDescriptor.openDirectory(parentPath.isEmpty ? "." : parentPath)
        }
        defer { parent.closeQuietly() }

        let target: FileDescriptor = try attempt("apply diff", layer) { () throws(Errno) in
            try parent.openDirectory(at: FilePath(root: nil, [name]))
        }
        defer { target.closeQuietly() }

        let stagingName = FilePath(".\(name.string).apply-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let staging: FileDescriptor = try attempt("create staging directory", parentPath.appending(stagingName.components)) { () throws(Errno) in
            try parent.makeDirectory(at: stagingName, permissions: .init(rawValue: 0o700))
            return try parent.openDirectory(at: stagingName)
        }

        let result: ApplyResult
        do throws(StorageError) {
            defer { staging.closeQuietly() }
            try TreeCloner.copyDirectoryAttributes(from: target, to: staging, path: layer.string)
            try TreeCloner.linkContents(of: target, into: staging, path: layer.string)
            let reader = try ArchiveReader(input: input)
            let extractor = try LayerExtractor(root: staging, options: options)
            let entries = try extractor.extractAll(from: reader)
            result = ApplyResult(size: extractor.size, entries: entries)
            try attempt("swap in applied layer", layer) { () throws(Errno) in
                try parent.rename(stagingName, to: FilePath(root: nil, [name]), flags: .exchange)
            }
        } catch {
            try? parent.removeTree(at: stagingName, kind: .directory)
            throw error
        }
        // The staging name now holds the layer as it was before.
        try attempt("remove the layer's previous contents", layer) { () throws(Errno) in
            try parent.removeTree(at: stagingName, kind: .directory)
        }
        return result
    }

    /// Applies a tar stream read from the file at `archive`.
    public static func apply(
        archive: FilePath, into layer: FilePath, options: ApplyOptions = ApplyOptions()
    ) throws(StorageError) -> ApplyResult {
        let input: FileDescriptor = try attempt("open layer archive", archive) { () throws(Errno) in
            try FileDescriptor.currentWorkingDirectory.open(at: archive, .readOnly)
        }
        defer { input.closeQuietly() }
        return try apply(from: input, into: layer, options: options)
    }
}
