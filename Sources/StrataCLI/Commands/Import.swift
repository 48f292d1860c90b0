import ArgumentParser
import GraphDriver
import OCIImage
import Overlay

/// `strata import`: an image as a chain of layers, named by their chain IDs.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import an image (OCI layout, oci-archive or docker-archive) as a chain of layers; print the top layer's ID.",
        discussion: """
            The image is an OCI image layout directory, an oci-archive tarball or a docker-archive \
            tarball (what `podman save` and `docker save` write, with plain or gzip layers), told \
            apart by its contents; archives are read in place, not unpacked. References are \
            written as skopeo writes them (oci:PATH[:REF], oci-archive:PATH[:REF], \
            docker-archive:PATH[:REF] or docker-archive:PATH:@N) or as a plain PATH[:TAG]; the \
            tag is matched against the layout's org.opencontainers.image.ref.name or the archive's \
            RepoTags. Layers are named by their chain IDs, and layers already present are reused. \
            Every blob digest and every layer's diff ID is checked; on any failure the layers this \
            import made are removed again.
            Examples: strata import ./debian-oci:bookworm
                      strata import docker-archive:minbase.tar:localhost/minbase:1
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The image: PATH[:TAG], oci:PATH[:REF], oci-archive:PATH[:REF] or docker-archive:PATH[:REF].")
    var reference: String

    func run() throws {
        let driver = try global.openDriver()
        let importer = OCIImporter(reference: reference)
        let progress = Progress(label: "import")
        let top = try importer.importImage(into: driver) { layer, reused in
            progress.note("\(reused ? "reused" : "applied") \(layer.layerID.rawValue.prefix(12)) (\(layer.descriptor.size) bytes)")
        }
        progress.finish()
        CommandOutput.line(top.rawValue).write()
    }
}
