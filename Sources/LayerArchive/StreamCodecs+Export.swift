/// LayerArchive's clients keep `StreamCompression`, `StreamDecompressor` and `TarMembers` under
/// `import LayerArchive`: they moved one level down, into StreamCodecs, so that OCIImage can read
/// image archives without the layer code.
@_exported import StreamCodecs
