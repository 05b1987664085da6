#if canImport(Glibc)
import Glibc
#endif
import CArchive
import FoundationEssentials
import PlashSystem

public let ociSource = ImageSourceKind(
    name: "oci", synopsis: "DIR[:TAG]|FILE.tar[:TAG]", operands: [.file], macro: "--from-oci",
    macroHelp: "start from the image of an OCI image layout, imported first (plash import-oci)",
    commands: [.init("import-oci", help: "Import the image an OCI image layout names (TAG, or its only image) and print its id.")],
    hint: { "(OCI layout \($0[0]))" }
) { arguments, _ in LayoutSource(path: arguments[0], dockerArchive: false) }

public let dockerArchiveSource = ImageSourceKind(
    name: "docker-archive", synopsis: "FILE", operands: [.file], macro: "--from-docker-archive",
    macroHelp: "start from the image of a docker archive (docker save), imported first",
    commands: [.init("import-docker-archive", help: "Import the first image of a docker archive (docker save) and print its id.")],
    hint: { "(docker archive \($0[0]))" }
) { arguments, _ in LayoutSource(path: arguments[0], dockerArchive: true) }

/// An OCI layout (DIR[:TAG], FILE.tar[:TAG]) or a docker archive.
struct LayoutSource: ImageSource {
    let path: String
    let dockerArchive: Bool

    /// Imported before and unchanged: nothing is read again.
    var cacheKey: String? { layoutKey(path, dockerArchive: dockerArchive) }

    func importImage(_ context: ImportContext) throws -> Store.Image {
        let key = cacheKey
        let image = dockerArchive
            ? try importDockerArchive(path, store: context.store, inUserNamespace: context.inUserNamespace, log: context.log)
            : try importOCI(path, store: context.store, inUserNamespace: context.inUserNamespace, log: context.log)
        // Only when nothing changed during the import: the key must name what was imported.
        if let key, layoutKey(path, dockerArchive: dockerArchive) == key { try? context.store.remember(key, image) }
        return image
    }
}

/// One layer to import: its blob below the layout's root, the blob's digest and size
/// where the manifest names them (a docker archive names only diff_ids), and its diff_id.
struct SourceLayer {
    var path: String
    var digest: String?
    var size: Int? = nil
    var diffID: String
    /// Checked against `digest` already, as plash downloaded it into its own staging:
    /// not hashed again.
    var checked = false
}

/// `plash import-oci DIR[:TAG]|FILE.tar[:TAG]`: the image that TAG (or the layout's only
/// image) names, a multi-arch index resolved to this machine's platform.
public func importOCI(_ source: String, store: Store, inUserNamespace: Bool, log: (String) -> Void) throws -> Store.Image {
    let (path, tag) = splitTag(source)
    do {
        return try withLayout(path, store: store) { layout, ownCopy in
            let index = try decode(OCIIndex.self, try readBlob(layout, "index.json", digest: nil), "index.json")
            let chosen = index.manifests.filter { tag == nil || $0.annotations?[ociRefNameAnnotation] == tag }
            guard chosen.count == 1 || (tag == nil && chosen.isEmpty == false && Set(chosen.map(\.digest)).count == 1) else {
                throw PlashError.failure(tag.map { "no image tagged \($0)" } ?? "\(chosen.count) images: name one with :TAG")
            }
            let blobs = LayoutBlobs(layout: layout)
            let first = try blobs.manifest(chosen[0])
            let (_, manifest) = try resolveManifest(first.bytes, type: first.type, blobs: blobs)
            let (configBytes, layers) = try resolveLayers(manifest, blobs: blobs)
            return try importLayers(layers, layout: layout, linkBlobs: ownCopy, store: store, inUserNamespace: inUserNamespace,
                                    script: "import-oci", config: try ImageConfig.decodeSource(configBytes, manifest.config.digest),
                                    log: log)
        }
    } catch {
        throw error.context("import-oci \(source)")
    }
}

/// `plash import-docker-archive FILE`: the first image of what `docker save` wrote.
public func importDockerArchive(_ file: String, store: Store, inUserNamespace: Bool, log: (String) -> Void) throws -> Store.Image {
    do {
        return try withLayout(file, store: store, mustBeTar: true) { layout, ownCopy in
            let entries = try decode([DockerArchiveEntry].self, try readBlob(layout, "manifest.json", digest: nil), "manifest.json")
            guard let entry = entries.first else { throw PlashError.failure("manifest.json names no image") }
            // docker names the config by its digest: <hex>.json, or blobs/sha256/<hex>.
            let name = splitLast("/" + entry.Config).1
            let hex = name.hasSuffix(".json") ? String(name.dropLast(5)) : name
            let configDigest = isHexDigest(hex) ? "sha256:" + hex : nil
            let configBytes = try readBlob(layout, entry.Config, digest: configDigest)
            let config = try decode(OCIConfig.RootFSOnly.self, configBytes, entry.Config)
            guard config.rootfs.diff_ids.count == entry.Layers.count else {
                throw PlashError.failure("the config names \(config.rootfs.diff_ids.count) layers, manifest.json \(entry.Layers.count)")
            }
            let layers = zip(entry.Layers, config.rootfs.diff_ids).map { SourceLayer(path: $0, digest: nil, diffID: $1) }
            return try importLayers(layers, layout: layout, linkBlobs: ownCopy, store: store, inUserNamespace: inUserNamespace,
                                    script: "import-docker-archive", config: try ImageConfig.decodeSource(configBytes, entry.Config),
                                    log: log)
        }
    } catch {
        throw error.context("import-docker-archive \(file)")
    }
}

/// The cache key of an OCI layout (DIR[:TAG], FILE.tar[:TAG]) or a docker archive as it
/// is now, so that a second build from it, unchanged, needs no import (and, for an
/// ordinary user, no child in their user namespace): a directory by its index.json, which
/// names every other blob by digest, a tar by its identity (device, inode, size, times;
/// any write changes the ctime). Nil when it cannot be read: the import says why.
func layoutKey(_ source: String, dockerArchive: Bool) -> String? {
    let (path, tag) = dockerArchive ? (source, nil) : splitTag(source)
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    var key = CacheKey("layout")
    key.add(dockerArchive ? "docker-archive" : "oci")
    key.add(tag ?? "")
    if info.st_mode & S_IFMT == S_IFDIR && !dockerArchive {
        // Not waited on when it is a FIFO; a regular file only.
        let fd = open(path + "/index.json", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG,
              let bytes = try? readAll(fd, path: path, what: "read", limit: 64 << 20) else { return nil }
        key.add("index.json")
        key.add(bytes: bytes)
    } else {
        guard info.st_mode & S_IFMT == S_IFREG else { return nil }
        key.add("file \(info.st_dev) \(info.st_ino) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec) "
                + "\(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)")
    }
    return key.hex()
}

/// PATH:TAG, unless PATH itself exists (a name may hold a colon).
func splitTag(_ source: String) -> (String, String?) {
    guard access(source, F_OK) != 0, let colon = source.lastIndex(of: ":") else { return (source, nil) }
    return (String(source[..<colon]), String(source[source.index(after: colon)...]))
}

/// Runs `body` with the layout's directory open: DIR itself, or a FILE.tar extracted
/// into staging first (plain, or compressed: the extractor tells).
func withLayout<T>(_ path: String, store: Store, mustBeTar: Bool = false,
                  _ body: (_ layout: Int32, _ ownCopy: Bool) throws -> T) throws -> T {
    var info = stat()
    try check(stat(path, &info), "open", path)
    if info.st_mode & S_IFMT == S_IFDIR && !mustBeTar {
        let fd = try check(open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open", path)
        defer { close(fd) }
        return try body(fd, false)
    }
    let staging = try store.makeStaging("import-layout")
    defer { try? removeTree(staging.path) }
    let input = try check(open(path, O_RDONLY | O_CLOEXEC), "open", path)
    defer { close(input) }
    try extractArchive(input, into: staging, log: { _ in })
    let root = try check(open(staging.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open", staging.data)
    defer { close(root) }
    return try body(root, true)
}

/// A layout's blobs, read from disk, for the resolver.
struct LayoutBlobs: BlobFetcher {
    let layout: Int32
    func manifest(_ descriptor: OCIDescriptor) throws -> (bytes: [UInt8], type: String) {
        (try smallBlob(descriptor), descriptor.mediaType)
    }
    func smallBlob(_ descriptor: OCIDescriptor) throws -> [UInt8] {
        try readBlob(layout, try blobPath(descriptor.digest), digest: descriptor.digest, size: descriptor.size)
    }
}

/// A small file of the layout (JSON), beneath it and through no symlink, checked
/// against its digest and size when they are known.
func readBlob(_ layout: Int32, _ path: String, digest: String?, size: Int? = nil) throws -> [UInt8] {
    let relative = try TarExtractor.relativePath(path, path)
    let fd = plash_open_beneath(layout, relative, O_RDONLY | O_CLOEXEC, 0)
    if fd < 0 { throw PlashError.system("open", path) }
    defer { close(fd) }
    let bytes = try readAll(fd, path: path, what: "read", limit: 64 << 20)
    if let digest { try VerifiedBlob.check(bytes, digest: digest, size: size, path) }
    return bytes
}

/// The layers, bottom first, as one plash image each on the one below, keyed in the
/// build cache by the chain of diff_ids: images that share a base share its layers.
/// Every layer not in the store yet is checked (blob digest, then diff_id while it is
/// extracted) before any is published, so a wrong digest stores nothing. A layer whose
/// blob the layout lacks (a pull downloads only what the store did not have) is
/// `fetch`ed first. When `plash rm` or `shrink` removes a base meanwhile, the layers are
/// looked at again: the import never builds on a removed image.
///
/// `linkBlobs`: the layout is plash's own copy in staging (a download, an unpacked tar),
/// so its blobs are hard-linked into the layers; a user's layout is copied from.
///
/// The source's `config` goes into the top layer's node before it is published. Layers
/// that are all in the store already under another config (the same files, another Cmd)
/// get a node of their own above, with no files, for this one: an image's config is its
/// top node's, keyed by the layers and the config together.
func importLayers(_ layers: [SourceLayer], layout: Int32, linkBlobs: Bool, store: Store, inUserNamespace: Bool,
                  script: String, config: ImageConfig, fetch: (Int) throws -> Void = { _ in }, log: (String) -> Void)
    throws -> Store.Image {
    if let tooDeep = StoreLayout.tooDeep(layers.count) { throw PlashError.failure(tooDeep) }
    let keys = layerKeys(layers)
    var configHash = CacheKey("image config")
    configHash.add(keys.last ?? "")
    configHash.add(bytes: try ociJSON(config))
    let configKey = configHash.hex()
    // One layer import at a time in a store: two images on one base imported at once
    // would otherwise both find the base missing and store it twice.
    let lock = try store.lockKey("oci-layers")
    defer { lock.releaseAndRemove() }
    if let hit = store.cached(configKey) { return hit }
    var attempt = 0
    while true {
        attempt += 1
        // The topmost layer already in the store, found once (rm does not wait for the
        // lock); those above it are extracted.
        var present: (index: Int, image: Store.Image)? = nil
        for index in keys.indices.reversed() {
            if let image = store.cached(keys[index]) { present = (index, image); break }
        }
        let first = (present?.index ?? -1) + 1
        var stagings: [Staging] = []
        defer { for staging in stagings { try? removeTree(staging.path) } }
        for index in first..<layers.count {
            let layer = layers[index]
            if faccessat(layout, try TarExtractor.relativePath(layer.path, layer.path), F_OK, AT_SYMLINK_NOFOLLOW) != 0 {
                try fetch(index)
            }
            log("--> \(script) layer \(index + 1)/\(layers.count) \(layer.diffID)")
            let staging = try store.makeStaging("import")
            stagings.append(staging)
            try extractLayer(layer, layout: layout, into: staging.path, linkBlob: linkBlobs, inUserNamespace: inUserNamespace)
            if index == layers.count - 1 { try config.write(into: staging.path) }
            log("--:")
        }
        var image = present?.image
        do {
            for (offset, staging) in stagings.enumerated() {
                image = try store.publish(staging, parentNode: image?.node ?? store.rootNode,
                                          script: "\(script) \(layers[first + offset].diffID)", key: keys[first + offset])
            }
            if stagings.isEmpty, let top = image, try ImageConfig.read(node: top.node) != config {
                let staging = try store.makeStaging("import")
                stagings.append(staging)
                try check(mkdir(staging.data, 0o755), "create", staging.data)
                try config.write(into: staging.path)
                image = try store.publish(staging, parentNode: top.node, script: "\(script) config", key: configKey)
            }
        } catch {
            // The base went before the layers on it were published: start from what is left.
            if attempt < 5, let node = image?.node, access(StoreLayout.data(ofNode: node), F_OK) != 0 { continue }
            throw error
        }
        stagings.removeAll()
        guard let image else { throw PlashError.failure("the image has no layers") }
        try store.remember(configKey, image)
        return image
    }
}

/// Extracts a layer into `staging`'s `_data` and keeps its blob beside (LayerBlob.swift):
/// the blob is brought into the staging first, then checked and extracted from there,
/// so what is kept is what was checked.
func extractLayer(_ layer: SourceLayer, layout: Int32, into staging: String, linkBlob: Bool, inUserNamespace: Bool) throws {
    let relative = try TarExtractor.relativePath(layer.path, layer.path)
    let source = plash_open_beneath(layout, relative, O_RDONLY | O_CLOEXEC, 0)
    if source < 0 { throw PlashError.system("open", layer.path) }
    defer { close(source) }
    let kept = blobFile(staging)
    try keepImportedBlob(source, at: kept, link: linkBlob)
    let fd = try check(open(kept, O_RDONLY | O_CLOEXEC), "open", kept)
    defer { close(fd) }
    // A docker archive names no blob digest: the kept blob's is found here.
    let digest = try layer.digest ?? "sha256:" + hashFile(fd, path: layer.path)
    if !layer.checked, let expected = layer.digest {
        try VerifiedBlob.checkFile(fd, path: layer.path, digest: expected, size: layer.size, layer.path)
    }
    let data = StoreLayout.data(ofNode: staging)
    try check(mkdir(data, 0o755), "create", data)
    let root = try check(open(data, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open", data)
    defer { close(root) }
    let input = try ArchiveInput(fd: fd)
    input.digest = SHA256()
    var reader = TarReader(input)
    var extractor = TarExtractor(root: root)
    // OCI whiteouts become overlay's once the layer's own entries are in place: a
    // marker may stand anywhere in the tar, before or after its directory.
    var whiteouts: [(path: [UInt8], mtime: Int)] = []
    var opaque: [[UInt8]] = []
    try extractor.extractAll(&reader) { entry in
        let path = try TarExtractor.relativePath(entry.path, "the name")
        let (parent, name) = TarExtractor.splitPath(path)
        if name.elementsEqual(".wh..wh..opq".utf8) { opaque.append(parent); return false }
        if name.starts(with: ".wh.".utf8) {
            whiteouts.append(((parent.isEmpty ? [] : parent + [UInt8(ascii: "/")]) + name.dropFirst(4), entry.mtime))
            return false
        }
        return true
    }
    try input.drain()
    let diffID = "sha256:" + input.digest!.hexDigest()
    try VerifiedBlob.compare(diffID, layer.diffID, layer.path, kind: "diff_id")
    var info = stat()
    try check(fstat(fd, &info), "stat", kept)
    if let type = layerMediaType(format: input.format) {
        let blob = LayerBlob(mediaType: type, digest: digest, size: Int(info.st_size), diff_id: diffID, imported: true)
        try writeBytes(blobDescriptorFile(staging), try ociJSON(blob))
    } else {
        unlink(kept)
    }
    for dir in opaque {
        let fd = try openDirectoryBeneath(root, dir)
        defer { if fd != root { close(fd) } }
        let name = inUserNamespace ? "user.overlay.opaque" : "trusted.overlay.opaque"
        if fsetxattr(fd, name, "y", 1, 0) == -1 { throw PlashError.system("mark opaque", String(decoding: dir, as: UTF8.self)) }
    }
    for (path, mtime) in whiteouts {
        let (parentPath, name) = TarExtractor.splitPath(path)
        let parent = try openDirectoryBeneath(root, parentPath)
        defer { if parent != root { close(parent) } }
        var before = stat()
        try check(fstat(parent, &before), "stat", String(decoding: parentPath, as: UTF8.self))
        // A 0/0 character device: overlayfs's whiteout, which the kernel lets an
        // ordinary user's namespace make too. The layer's own entry of that name wins.
        let shown = String(decoding: path, as: UTF8.self)
        if mknodat(parent, TarExtractor.cString(name), S_IFCHR, 0) == -1 {
            if errno == EEXIST { continue }
            throw PlashError.system("create whiteout", shown)
        }
        // The archive's times, on the whiteout and on its directory (which the mknod
        // touched), so that an unchanged layer exports the same bytes again.
        var times = [timespec(tv_sec: mtime, tv_nsec: 0), timespec(tv_sec: mtime, tv_nsec: 0)]
        try check(utimensat(parent, TarExtractor.cString(name), &times, AT_SYMLINK_NOFOLLOW), "set times", shown)
        times = [before.st_atim, before.st_mtim]
        try check(futimens(parent, &times), "set times", shown)
    }
}

/// A directory beneath `root`, made (0755) where the layer's tar did not list it.
func openDirectoryBeneath(_ root: Int32, _ path: [UInt8]) throws -> Int32 {
    if path.isEmpty { return root }
    var current = root
    for part in path.split(separator: UInt8(ascii: "/")) {
        let name = TarExtractor.cString(part)
        if mkdirat(current, name, 0o755) == -1 && errno != EEXIST { throw PlashError.system("create directory", String(decoding: path, as: UTF8.self)) }
        let next = openat(current, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if current != root { close(current) }
        if next < 0 { throw PlashError.system("open directory", String(decoding: path, as: UTF8.self)) }
        current = next
    }
    return current
}
