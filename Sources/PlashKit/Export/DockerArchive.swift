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

/// A reference as `docker load` tags it: NAME[:TAG], `latest` when no tag. nil for a
/// reference docker would refuse (distribution's grammar): NAME is [HOST[:PORT]/] and
/// components of lowercase letters and digits joined by one `.`, one or two `_` or any
/// number of `-`, 255 bytes at most; TAG is up to 128 letters, digits, `_`, `.` and `-`,
/// not starting with `.` or `-`.
public func dockerReference(_ reference: String) -> (name: String, tag: String)? {
    var name = reference, tag = "latest"
    if let colon = reference.lastIndex(of: ":"), !reference[colon...].contains("/") {
        name = String(reference[..<colon])
        tag = String(reference[reference.index(after: colon)...])
    }
    var components = name.split(separator: "/", omittingEmptySubsequences: false)
    if components.count > 1, components[0].contains(".") || components[0].contains(":") || components[0] == "localhost" {
        guard isRegistryHost(components.removeFirst()) else { return nil }
    }
    let word = { (c: Character) in c.isASCII && (c.isLetter || c.isNumber || c == "_") }
    guard name.utf8.count <= 255, components.allSatisfy({ isJoined($0, parts: { $0.isASCII && ($0.isLowercase || $0.isNumber) },
                                                                      separators: [".", "_", "__"], dashes: true) }),
          let first = tag.first, word(first), tag.count <= 128, tag.allSatisfy({ word($0) || $0 == "." || $0 == "-" }) else { return nil }
    return (name, tag)
}

/// HOST[:PORT] as docker names a registry: labels of letters, digits and inner `-`
/// joined by `.`, a port of digits.
func isRegistryHost(_ text: Substring) -> Bool {
    let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
    guard parts.count == 1 || (!parts[1].isEmpty && parts[1].allSatisfy { $0.isASCII && $0.isNumber }) else { return false }
    return parts[0].split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
        isJoined(label, parts: { $0.isASCII && ($0.isLetter || $0.isNumber) }, separators: [], dashes: true)
    }
}

/// Whether `text` is runs of `parts` characters joined by one of `separators` (or by
/// any number of `-`, with `dashes`): the shape of docker's and OCI's reference grammars.
func isJoined(_ text: Substring, parts: (Character) -> Bool, separators: Set<String>, dashes: Bool) -> Bool {
    var rest = text[...]
    while true {
        let run = rest.prefix(while: parts)
        guard !run.isEmpty else { return false }
        rest = rest.dropFirst(run.count)
        if rest.isEmpty { return true }
        let separator = rest.prefix { !parts($0) }
        guard separators.contains(String(separator)) || (dashes && separator.allSatisfy { $0 == "-" }) else { return false }
        rest = rest.dropFirst(separator.count)
    }
}

/// Whether `tag` may name an image in an OCI layout (image-spec's grammar of
/// `org.opencontainers.image.ref.name`): components of letters and digits joined by
/// one of `-._:@+` or `--`, separated by `/`; what skopeo's and umoci's `DIR:TAG` name.
public func isOCIRefName(_ tag: String) -> Bool {
    tag.split(separator: "/", omittingEmptySubsequences: false).allSatisfy {
        isJoined($0, parts: { $0.isASCII && ($0.isLetter || $0.isNumber) }, separators: ["-", ".", "_", ":", "@", "+", "--"], dashes: false)
    }
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
