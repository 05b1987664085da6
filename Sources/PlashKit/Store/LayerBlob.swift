#if canImport(Glibc)
import Glibc
#endif
import CArchive
import FoundationEssentials
import PlashSystem

/// The blob a layer leaves the store as, kept in its node beside its files, so that it
/// goes when the layer goes (rm, shrink, purge, clean):
///
///     layer/0/1/2/_blob        the blob
///     layer/0/1/2/_blob.json   its descriptor: mediaType, digest, size, diff_id, imported
///
/// An imported layer keeps the blob it came as (the registry's, the layout's, the
/// archive's), so that an export gives the source's digests back. A layer plash built
/// keeps the gzip its first export made: layers never change, so later exports and
/// pushes compress nothing.
struct LayerBlob: Codable, Equatable {
    var mediaType: String
    var digest: String
    var size: Int
    var diff_id: String
    /// The source's own bytes, which plash cannot make again: a damaged one is refused,
    /// where a built layer's is made again from its files.
    var imported: Bool

    var descriptor: OCIDescriptor { OCIDescriptor(mediaType: mediaType, digest: digest, size: size) }
}

func blobFile(_ node: String) -> String { StoreLayout.blob(ofNode: node) }
func blobDescriptorFile(_ node: String) -> String { StoreLayout.blobDescriptor(ofNode: node) }

/// The OCI media type of a layer the decoder read as `format`; nil for xz and bzip2,
/// which no OCI layer type names (such a layer leaves as plash's gzip).
func layerMediaType(format: String) -> String? {
    switch format {
    case "plain": return MediaType.ociLayer
    case "gzip": return MediaType.ociLayerGzip
    case "zstd": return MediaType.ociLayerZstd
    default: return nil
    }
}

/// The layer's kept blob, checked against its size and digest. Without one (a layer
/// never exported, or stored by an older plash), or with a damaged one of a built layer,
/// it is made from the layer's files and kept; with `make` false that is left to the
/// caller (nil). A damaged imported blob is refused: exporting anything else would
/// change the image's digests.
func keptBlob(_ layer: Store.Image, store: Store, make: Bool = true) throws -> LayerBlob? {
    let node = layer.node
    if let kept = try readLayerBlob(node) {
        do {
            try checkKeptBlob(kept, file: blobFile(node))
            return kept
        } catch let damage as PlashError where kept.imported {
            throw damage.advising("remove the image and import it again")
        } catch {
            // A built layer's blob is made again from its files, below.
        }
    }
    return make ? try makeLayerBlob(layer, store: store) : nil
}

/// The descriptor in `_blob.json`; nil when the layer has none. Its digest and diff_id
/// must be digests and its type a layer's: they go into the manifest and config as they are.
func readLayerBlob(_ node: String) throws -> LayerBlob? {
    let path = blobDescriptorFile(node)
    let invalid = PlashError.failure("\(path): not a layer's blob descriptor").advising("remove the image and import or build it again")
    guard let fd = try openKeptFile(path) else { return nil }
    guard fd >= 0 else { throw invalid }
    defer { close(fd) }
    let bytes = try readAll(fd, path: path, what: "read", limit: 1 << 16)
    guard let blob = try? JSONDecoder().decode(LayerBlob.self, from: Data(bytes)), (try? blobPath(blob.digest)) != nil,
          (try? blobPath(blob.diff_id)) != nil, ["plain", "gzip", "zstd"].map(layerMediaType).contains(blob.mediaType) else {
        throw invalid
    }
    return blob
}

/// A file plash keeps in a node (`_blob`, `_blob.json`), open for reading: nil when there
/// is none, -1 when what is there is not a regular file. Never through a symlink (as root
/// it would read any file), and a FIFO is not waited on: its open and reads would stop
/// the export for good.
func openKeptFile(_ path: String) throws -> Int32? {
    let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
    if fd < 0 {
        if errno == ENOENT { return nil }
        if errno == ELOOP { return -1 }
        throw PlashError.system("open", path)
    }
    var info = stat()
    if fstat(fd, &info) == 0 && info.st_mode & S_IFMT == S_IFREG { return fd }
    close(fd)
    return -1
}

/// Fails unless `file` is the blob `kept` describes: there, a regular file, of its size
/// and digest (checked as every blob plash reads is, by VerifiedBlob).
func checkKeptBlob(_ kept: LayerBlob, file: String) throws {
    let what = file + (kept.imported ? " (the layer's imported blob)" : "")
    guard let fd = try openKeptFile(file) else { throw PlashError.failure("\(what): missing") }
    guard fd >= 0 else { throw PlashError.failure("\(what): not a regular file") }
    defer { close(fd) }
    try VerifiedBlob.checkFile(fd, path: file, digest: kept.digest, size: kept.size, what)
}

/// Compresses the layer's files into its kept gzip blob: written in staging, then
/// renamed into the node, and only then described, so that a descriptor never names a
/// partial blob.
func makeLayerBlob(_ layer: Store.Image, store: Store) throws -> LayerBlob {
    let node = layer.node
    let staging = try store.makeStaging("blob")
    defer { try? removeTree(staging.path) }
    let file = blobFile(staging.path)
    let (descriptor, diffID) = try writeLayerTar(layer.data, to: file, compress: true)
    try check(rename(file, blobFile(node)), "rename", blobFile(node))
    let blob = LayerBlob(mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size,
                         diff_id: diffID, imported: false)
    try writeReplacing(blobDescriptorFile(node), try ociJSON(blob))
    return blob
}

/// Keeps an imported layer's blob (open as `source`) at `file`: a hard link when
/// `link` (the source is plash's own staging, on the store's file system) and the file
/// is this user's (a download; not an unpacked tar's entry of another owner), else a
/// copy, so that a layout the user changes later cannot change the store.
func keepImportedBlob(_ source: Int32, at file: String, link: Bool) throws {
    var info = stat()
    try check(fstat(source, &info), "stat", procPath(source))
    // linkat through /proc/self/fd: AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH.
    if !(link && info.st_uid == geteuid() && linkat(AT_FDCWD, procPath(source), AT_FDCWD, file, AT_SYMLINK_FOLLOW) == 0) {
        try copyFile(source, to: file)
    }
    // One mode for every kept blob (a download is 0600): a layout tar's entries are
    // the same whatever the layer came from.
    try check(chmod(file, 0o644), "chmod", file)
}

/// Puts a kept blob into a layout's `blobs` directory under its digest: a hard link
/// when the layout is plash's own staging (a layout tar, or what push uploads), else a
/// copy, so that an export the user changes later cannot change the store.
func placeBlob(_ file: String, digest: String, blobs: String, link: Bool) throws {
    let target = blobs + "/" + digest.dropFirst("sha256:".count)
    let temporary = blobs + "/.blob.plash-\(getpid())"
    unlink(temporary)
    defer { unlink(temporary) }
    if !link || Glibc.link(file, temporary) == -1 {
        let source = try check(open(file, O_RDONLY | O_CLOEXEC), "open", file)
        defer { close(source) }
        try copyFile(source, to: temporary)
    }
    try check(rename(temporary, target), "rename", target)
}

/// A copy of the open file `source` (from its start) at `path`, made by the kernel
/// (copy_file_range) where it can.
func copyFile(_ source: Int32, to path: String) throws {
    let out = try check(open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644), "create", path)
    defer { close(out) }
    var info = stat()
    try check(fstat(source, &info), "stat", procPath(source))
    var offset: Int64 = 0
    while offset < Int64(info.st_size) {
        let n = plash_copy_file_range(source, &offset, out, Int(Int64(info.st_size) - offset))
        if n > 0 { continue }
        if n == 0 { break }
        if errno == EINTR { continue }
        guard errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP else {
            throw PlashError.system("copy to", path)
        }
        // Older kernels refuse some pairs of file systems: read and write it.
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let got = chunk.withUnsafeMutableBytes { pread(source, $0.baseAddress, $0.count, off_t(offset)) }
            if got < 0 { if errno == EINTR { continue }; throw PlashError.system("read", procPath(source)) }
            if got == 0 { break }
            try writeAll(out, Array(chunk[0..<got]), path: path)
            offset += Int64(got)
        }
        break
    }
}

/// The uncompressed tar of a kept blob at `path`, checked against the layer's diff_id:
/// what a docker archive carries.
func writeUncompressed(_ file: String, _ kept: LayerBlob, to path: String) throws {
    let source = try check(open(file, O_RDONLY | O_CLOEXEC), "open", file)
    defer { close(source) }
    let input = try ArchiveInput(fd: source)
    input.digest = SHA256()
    let out = try check(open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644), "create", path)
    defer { close(out) }
    while try input.fill() {
        try input.read(input.end - input.start) { bytes in
            var done = 0
            while done < bytes.count {
                let n = write(out, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 { if errno == EINTR { continue }; throw PlashError.system("write", path) }
                done += n
            }
        }
    }
    let diffID = "sha256:" + input.digest!.hexDigest()
    try VerifiedBlob.compare(diffID, kept.diff_id, file + " uncompressed", kind: "diff_id")
}
