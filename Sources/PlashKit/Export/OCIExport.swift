#if canImport(Glibc)
import Glibc
#endif
import CArchive
import FoundationEssentials
import PlashExec
import PlashSystem

/// zlib's level 4, the fastest with lazy matching: on binaries 3.6% larger than level 6
/// at half its CPU time; level 1 is 12% larger (docs/performance.md). A built layer is
/// compressed once (its blob is kept), and sent and stored for as long as it is used.
let gzipLevel: Int32 = 4

/// `plash export-oci IMAGE DIR|FILE.tar [--tag TAG]`: an OCI image layout with one
/// layer per plash layer: an imported layer's own blob, a built layer's gzip of its
/// layer directory itself (not the merged tree), so what an upper layer deleted leaves
/// as a whiteout. A DIR that is a layout already keeps its other tags; a FILE.tar is
/// the layout as one tar, written beside and renamed into place. Blobs are content-addressed, so a failed export
/// leaves no wrong blob, and index.json is replaced in one rename.
public func exportOCI(_ image: Store.Image, to target: String, tag: String, store: Store) throws {
    let staging = try store.makeStaging("export-oci")
    defer { try? removeTree(staging.path) }
    do {
        let asTar = isArchiveTarget(target)
        let layout = asTar ? staging.path + "/layout" : target
        let blobs = layout + "/blobs/sha256"
        // An earlier layout's index is read first: a file that is not one stops the
        // export before anything is written.
        // Only a regular file, and no more of it than an index holds: a FIFO or a link
        // to /dev/zero in a directory someone else made would stop the export for good.
        var index = OCIIndex(manifests: [])
        if let fd = try openKeptFile(layout + "/index.json") {
            defer { if fd >= 0 { close(fd) } }
            guard fd >= 0, let old = try? readAll(fd, path: layout + "/index.json", what: "read", limit: 16 << 20),
                  let decoded = try? JSONDecoder().decode(OCIIndex.self, from: Data(old)) else {
                throw PlashError.failure("\(layout)/index.json: not an OCI image index")
            }
            index = decoded
        }
        for dir in [layout, layout + "/blobs", blobs] {
            if mkdir(dir, 0o755) == -1 && errno != EEXIST { throw PlashError.system("create", dir) }
            // A layout someone else made may hold links (blobs/ -> elsewhere): blobs are
            // written into real directories of DIR only, never through a link out of it.
            var info = stat()
            try check(lstat(dir, &info), "stat", dir)
            guard dir == layout || (info.st_mode & S_IFMT) == S_IFDIR else {
                throw PlashError.failure("\(dir): not a directory (a symlink is not followed)")
            }
        }
        // Kept blobs are hard-linked into plash's own staging (a layout tar, or the layout
        // that push uploads): nothing else writes there, and it goes when the export ends.
        let link = asTar || layout.hasPrefix(store.tmp + "/")
        let (configDescriptor, descriptors) = try writeImageBlobs(image, store: store, blobs: blobs, compress: true, link: link)
        var manifest = try writeBlob(try ociJSON(OCIManifest(config: configDescriptor, layers: descriptors)),
                                     type: MediaType.ociManifest, blobs: blobs)
        manifest.annotations = [ociRefNameAnnotation: tag]

        index.manifests.removeAll { $0.annotations?[ociRefNameAnnotation] == tag }
        index.manifests.append(manifest)
        try writeReplacing(layout + "/oci-layout", Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8))
        try writeReplacing(layout + "/index.json", try ociJSON(index))

        if asTar { try archiveDirectory(layout, to: target) }
    } catch {
        throw error.context("export-oci \(image.id)")
    }
}

/// Whether export-oci writes the layout as one tar: to `-` (stdout), to a FILE.tar, or
/// to something that is no directory and no regular file (a device, a FIFO).
func isArchiveTarget(_ target: String) -> Bool {
    var info = stat()
    return target == "-" || target.hasSuffix(".tar")
        || (stat(target, &info) == 0 && (info.st_mode & S_IFMT) != S_IFDIR && (info.st_mode & S_IFMT) != S_IFREG)
}

/// The directory `dir` as a tar at `file` (ExportFile: `-`, a device or a pipe, or a
/// file written beside and renamed into place), its names as docker and skopeo write a
/// layout's or an archive's: `index.json`, `manifest.json`, not `./manifest.json`.
func archiveDirectory(_ dir: String, to file: String) throws {
    let output = try ExportFile(file)
    defer { output.close() }
    let root = try check(open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open", dir)
    defer { close(root) }
    try TarWriter(fd: output.fd, name: output.name).writeTree(root, bare: true)
    try output.commit()
}

/// The image's layers, bottom first, and its config, as blobs named by their SHA-256 in
/// `blobs`: each layer's kept blob for an OCI layout (LayerBlob.swift: made and kept at
/// the first export of a built layer), plain tars (digest and diff_id the same) for a
/// docker archive. `link` hard-links kept blobs where the layout is plash's own staging.
/// A node that changed no file (a config macro's) is a history entry, not a layer.
func writeImageBlobs(_ image: Store.Image, store: Store, blobs: String, compress: Bool, link: Bool)
    throws -> (config: OCIDescriptor, layers: [OCIDescriptor]) {
    let layers = Array(store.stack(of: image).reversed())
    var descriptors: [OCIDescriptor] = []
    var diffIDs: [String] = []
    for layer in layers where try !isEmptyLayer(layer) {
        let (descriptor, diffID) = compress ? try placeLayerBlob(layer, store: store, blobs: blobs, link: link)
                                            : try writeDockerLayer(layer, store: store, blobs: blobs)
        descriptors.append(descriptor)
        diffIDs.append(diffID)
    }
    let whole = try exportedConfig(image, store: store)
    let config = OCIConfig(created: whole.created!, author: whole.author, config: whole.config ?? .init(),
                           rootfs: .init(diff_ids: diffIDs), history: whole.history ?? [])
    let configDescriptor = try writeBlob(try ociJSON(config), type: MediaType.ociConfig, blobs: blobs)
    return (configDescriptor, descriptors)
}

/// An OCI layout's layer: the node's kept blob, put into `blobs`.
func placeLayerBlob(_ layer: Store.Image, store: Store, blobs: String, link: Bool) throws -> (OCIDescriptor, String) {
    let kept = try keptBlob(layer, store: store)!
    try placeBlob(blobFile(layer.node), digest: kept.digest, blobs: blobs, link: link)
    return (kept.descriptor, kept.diff_id)
}

/// A docker archive's layer: the kept blob uncompressed (an imported layer's own tar),
/// or, for a layer without one, the tar of its files; named by its digest, the diff_id.
func writeDockerLayer(_ layer: Store.Image, store: Store, blobs: String) throws -> (OCIDescriptor, String) {
    let node = layer.node
    let temporary = blobs + "/.layer.plash-\(getpid())"
    defer { unlink(temporary) }
    let diffID: String
    if let kept = try keptBlob(layer, store: store, make: false) {
        try writeUncompressed(blobFile(node), kept, to: temporary)
        diffID = kept.diff_id
    } else {
        diffID = try writeLayerTar(layer.data, to: temporary, compress: false).diffID
    }
    var info = stat()
    try check(stat(temporary, &info), "stat", temporary)
    let target = blobs + "/" + diffID.dropFirst("sha256:".count)
    try check(rename(temporary, target), "rename", target)
    return (OCIDescriptor(mediaType: MediaType.ociLayer, digest: diffID, size: Int(info.st_size)), diffID)
}

/// Whether the merged image holds plash's entrypoint: the topmost layer that names it
/// decides (a character device there is a whiteout). For images stored before plash kept
/// configs: --entrypoint now sets the config's Entrypoint.
func hasEntrypoint(_ bottomFirst: [String]) -> Bool {
    for layer in bottomFirst.reversed() {
        var info = stat()
        if lstat(layer + entrypointPath, &info) == 0 { return info.st_mode & S_IFMT == S_IFREG }
    }
    return false
}

/// The tar of a layer directory at `file`, gzip-compressed or plain: its descriptor
/// (the file's SHA-256 is its digest) and its diff_id (the tar's SHA-256).
func writeLayerTar(_ layer: String, to file: String, compress: Bool) throws -> (descriptor: OCIDescriptor, diffID: String) {
    let out = try check(open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644), "create", file)
    defer { close(out) }
    // The encoder writes the gzip header at once: made only for a gzip.
    let encoder = compress ? plash_gzip_encoder_new(out, gzipLevel) : nil
    if compress && encoder == nil { throw PlashError.system("compress", file) }
    defer { plash_gzip_encoder_free(encoder) }
    let root = try check(open(layer, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open", layer)
    defer { close(root) }
    var uncompressed = SHA256()
    let writer = TarWriter(fd: out, name: file)
    writer.ociWhiteouts = true
    writer.sink = { bytes in
        uncompressed.update(bytes)
        if compress {
            try check(bytes.withUnsafeBytes { plash_gzip_encoder_write(encoder, $0.baseAddress, $0.count, 0) }, "write", file)
        } else {
            try writeAll(out, bytes, path: file)
        }
    }
    try writer.writeTree(root)
    if compress { try check(plash_gzip_encoder_write(encoder, nil, 0, 1), "write", file) }
    let diffID = uncompressed.hexDigest()
    let digest = compress ? try hashFile(out, path: file) : diffID
    let size = Int(lseek(out, 0, SEEK_END))
    return (OCIDescriptor(mediaType: compress ? MediaType.ociLayerGzip : MediaType.ociLayer,
                          digest: "sha256:" + digest, size: size), "sha256:" + diffID)
}

func writeBlob(_ bytes: [UInt8], type: String, blobs: String) throws -> OCIDescriptor {
    var hash = SHA256()
    hash.update(bytes)
    let digest = hash.hexDigest()
    try writeReplacing(blobs + "/" + digest, bytes)
    return OCIDescriptor(mediaType: type, digest: "sha256:" + digest, size: bytes.count)
}

/// Written beside and renamed over: a reader sees the old file or the new, whole.
func writeReplacing(_ path: String, _ bytes: [UInt8]) throws {
    let (dir, name) = splitLast(path)
    let temporary = dir + "/." + name + ".plash-\(getpid())"
    let fd = try createPartial(temporary)
    do { try writeAll(fd, bytes, path: path) } catch { close(fd); unlink(temporary); throw error }
    close(fd)
    if rename(temporary, path) == -1 { unlink(temporary); throw PlashError.system("rename", path) }
}

/// A new file at `path`, the name a file is written under before its rename into place,
/// in a directory that others may write to (/tmp): whatever is there is removed, and
/// the file is created, never opened through a symlink that another user put there
/// (root would write through it into any file).
func createPartial(_ path: String) throws -> Int32 {
    unlink(path)
    return try check(open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644), "create", path)
}
