#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PlashSystem

/// One image of a `docker save` archive's manifest.json.
struct DockerArchiveEntry: Codable {
    var Config: String
    var RepoTags: [String]?
    var Layers: [String]
}

/// `plash export-docker-archive IMAGE FILE [--tag REF]`: what `docker save` writes and
/// `docker load` and `podman load` read: manifest.json naming the config and the plain
/// layer tars (as docker 25 does, under blobs/sha256/), and the legacy `repositories`
/// when tagged. The layers and config are export-oci's, uncompressed: an imported
/// layer's tar is its kept blob's, so its diff_id is the source's.
public func exportDockerArchive(_ image: Store.Image, to file: String, reference: String?, store: Store) throws {
    let staging = try store.makeStaging("export-docker")
    defer { try? removeTree(staging.path) }
    do {
        let root = staging.path + "/archive"
        let blobs = root + "/blobs/sha256"
        for dir in [root, root + "/blobs", blobs] { try check(mkdir(dir, 0o755), "create", dir) }
        let (config, layers) = try writeImageBlobs(image, store: store, blobs: blobs, compress: false, link: true)
        let path = { (descriptor: OCIDescriptor) in "blobs/sha256/" + descriptor.digest.dropFirst("sha256:".count) }
        var tags: [String]? = nil
        if let reference, let (name, tag) = dockerReference(reference) {
            tags = [name + ":" + tag]
            let top = layers.last.map { String($0.digest.dropFirst("sha256:".count)) } ?? ""
            try writeReplacing(root + "/repositories", try ociJSON([name: [tag: top]]))
        }
        let entry = DockerArchiveEntry(Config: path(config), RepoTags: tags, Layers: layers.map(path))
        try writeReplacing(root + "/manifest.json", try ociJSON([entry]))
        try archiveDirectory(root, to: file)
    } catch {
        throw error.context("export-docker-archive \(image.id)")
    }
}
