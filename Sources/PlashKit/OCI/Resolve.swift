import FoundationEssentials
import PlashSystem

// Manifest -> platform -> config -> layers, the one resolution of an image that a pull
// and an OCI layout's import share, as containers/image's ImageSource is shared by its
// transports: a registry fetches the blobs over HTTP, a layout reads them from disk.

/// Where an image's manifests and config come from. Both read what a descriptor names
/// through VerifiedBlob: its digest and size are checked before the bytes are used.
protocol BlobFetcher {
    /// The manifest or index `descriptor` names, and the type its transport says it has.
    func manifest(_ descriptor: OCIDescriptor) throws -> (bytes: [UInt8], type: String)
    /// A small blob (a config) that `descriptor` names.
    func smallBlob(_ descriptor: OCIDescriptor) throws -> [UInt8]
}

/// The type of a manifest: its transport's, unless that is none of the manifest types
/// (a registry that answers with a generic one, a layout's descriptor without one): then
/// the manifest's own `mediaType`.
func manifestType(_ bytes: [UInt8], said: String) -> String {
    if MediaType.manifests.contains(said) { return said }
    return (try? JSONDecoder().decode(MediaTypeOnly.self, from: Data(bytes)).mediaType ?? nil) ?? said
}

/// The image manifest that `bytes` (a manifest, or an index) leads to on this machine:
/// an index's first entry whose platform runs here, fetched and checked by `blobs`.
func resolveManifest(_ bytes: [UInt8], type: String, blobs: BlobFetcher) throws -> (bytes: [UInt8], manifest: OCIManifest) {
    var (bytes, type) = (bytes, manifestType(bytes, said: type))
    if MediaType.isIndex(type) {
        let index = try decode(OCIIndex.self, bytes, "the index")
        guard let chosen = index.manifests.first(where: { OCIPlatform.machine.runs($0.platform) }) else {
            throw PlashError.failure("no image for \(OCIPlatform.machine.description) in the index")
        }
        (bytes, type) = try blobs.manifest(chosen)
        type = manifestType(bytes, said: type)
    }
    guard MediaType.isImageManifest(type) else {
        throw PlashError.failure("a manifest of type \(type.isEmpty ? "none" : type), not an image's")
    }
    return (bytes, try decode(OCIManifest.self, bytes, "the manifest"))
}

/// The manifest's config (its bytes) and its layers, bottom first, each with the
/// diff_id the config gives it.
func resolveLayers(_ manifest: OCIManifest, blobs: BlobFetcher) throws -> (config: [UInt8], layers: [SourceLayer]) {
    let configBytes = try blobs.smallBlob(manifest.config)
    let config = try decode(OCIConfig.RootFSOnly.self, configBytes, manifest.config.digest)
    guard config.rootfs.diff_ids.count == manifest.layers.count else {
        throw PlashError.failure("the config names \(config.rootfs.diff_ids.count) layers, the manifest \(manifest.layers.count)")
    }
    let layers = try zip(manifest.layers, config.rootfs.diff_ids).map {
        SourceLayer(path: try blobPath($0.digest), digest: $0.digest, size: $0.size, diffID: $1)
    }
    return (configBytes, layers)
}
