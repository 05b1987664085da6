#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PlashSystem

// Pushing to registries (Docker Registry HTTP API v2, OCI distribution-spec "Pushing
// blobs"), through the same RegistrySession as pulls: its credentials and tokens.

/// `plash push IMAGE REF`: the image exported as an OCI layout into staging, then each
/// blob the registry lacks (HEAD) uploaded, then the manifest put under REF's tag. Shared
/// layers are not sent twice. The manifest goes last, so a push that fails leaves the
/// registry without it: no image whose blobs are missing. Returns the manifest's digest,
/// which names the pushed image (`REF@DIGEST`) as skopeo's --digestfile records it.
@discardableResult
public func pushImage(_ image: Store.Image, to text: String, store: Store, log: (String) -> Void) throws -> String {
    do {
        let reference = try RegistryReference(text)
        guard reference.digest == nil, let tag = reference.tag else {
            throw PlashError.failure("a push names a tag, not a digest")
        }
        let staging = try store.makeStaging("push")
        defer { try? removeTree(staging.path) }
        let path = staging.path + "/layout"
        try exportOCI(image, to: path, tag: tag, store: store)
        let layout = try check(open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open", path)
        defer { close(layout) }
        let index = try decode(OCIIndex.self, try readBlob(layout, "index.json", digest: nil), "index.json")
        guard let descriptor = index.manifests.first else { throw PlashError.failure("the export wrote no manifest") }
        let manifest = try decode(OCIManifest.self, try LayoutBlobs(layout: layout).smallBlob(descriptor), descriptor.digest)
        let blobs = manifest.layers + [manifest.config]
        // Blobs seen in another repository of this registry are mounted from there; the
        // token must allow pulling from it, as docker asks.
        let sources = BlobSources(store)
        var mountFrom: [String: String] = [:]
        for blob in blobs {
            if let source = sources.repository(of: blob.digest, on: reference.registry), source != reference.repository {
                mountFrom[blob.digest] = source
            }
        }
        let session = RegistrySession(reference)
        session.scopes = ["repository:\(reference.repository):pull,push"] + Set(mountFrom.values).sorted().map { "repository:\($0):pull" }
        for blob in blobs {
            let exists = try session.request("/blobs/" + blob.digest, method: "HEAD", accept: nil, allowing: [404])
            if exists.status != 404 { continue }
            let source = mountFrom[blob.digest]
            log(source.map { "--> mount \(blob.digest) from \($0)" } ?? "--> upload \(blob.digest)")
            try withBlobFile(path, blob.digest) { fd, size in
                log(try session.uploadBlob(blob.digest, fd: fd, size: size, mountingFrom: source, log: log))
            }
            log("--:")
        }
        try withBlobFile(path, descriptor.digest) { fd, size in
            try session.request("/manifests/" + tag, method: "PUT", accept: nil, headers: ["Content-Type: " + descriptor.mediaType],
                                upload: (fd, 0, size), what: "manifest \(tag)")
        }
        sources.remember(blobs.map(\.digest), on: reference.registry, repository: reference.repository)
        return descriptor.digest
    } catch {
        throw error.context("push \(text)")
    }
}

/// Blobs larger than this go up in chunks of this size, smaller ones in one request:
/// $PLASH_PUSH_CHUNK_MIB MiB, else 32. Proxies in front of registries often cap a
/// request's body (at 100 MB, say); a chunk well below that passes, and is large
/// enough that a connection per chunk costs nothing.
var pushChunkSize: Int64 {
    Int64(numberSetting("PLASH_PUSH_CHUNK_MIB").map { min(max($0, 1), 1 << 20) } ?? 32) << 20
}

extension RegistrySession {
    /// Uploads `size` bytes of `fd` as the blob `digest`: POST starts a session (asking
    /// first to mount the blob from the repository `source`: done when the registry
    /// answers 201); a blob above the chunk size goes in PATCHes (each with its
    /// Content-Range, each to the Location the last answer gave), a PUT ?digest= ends
    /// it, with the whole blob as its body when there were no chunks. A registry that
    /// will not take chunks gets the blob in one piece, in a new session. A failed
    /// upload's session is cancelled. Returns the line that says what went how fast.
    func uploadBlob(_ digest: String, fd: Int32, size: Int64, mountingFrom source: String?,
                    log: (String) -> Void) throws -> String {
        let started: (location: String, minimum: Int64)
        if let source {
            guard let session = try mount(digest, from: source) else { return "mounted" }
            log("not mounted: uploading")
            started = session
        } else {
            started = try startUpload()
        }
        var location = started.location
        let progress = DownloadProgress("uploaded")
        do {
            var whole = true
            let chunk = max(pushChunkSize, started.minimum)
            if size > chunk {
                if let next = try sendChunks(digest, fd: fd, size: size, chunk: chunk, to: location, progress: progress) {
                    location = next
                    whole = false
                } else {
                    log("the registry refused a chunk: uploading in one piece")
                    cancelUpload(location)
                    location = try startUpload().location
                }
            }
            let done = location + (location.contains("?") ? "&" : "?") + "digest=" + percentEncoded(digest)
            try request(done, method: "PUT", accept: nil, headers: ["Content-Type: application/octet-stream"],
                        upload: whole ? (fd, 0, size) : nil, what: "upload \(digest)", progress: whole ? progress.update : nil)
        } catch {
            cancelUpload(location)
            throw error
        }
        return progress.finish()
    }

    /// A new upload session: its URL, and the smallest chunk the registry takes
    /// (OCI-Chunk-Min-Length, where it says).
    func startUpload() throws -> (location: String, minimum: Int64) {
        let url = reference.base + "/blobs/uploads/"
        return try uploadSession(try request(url, method: "POST", accept: nil, what: "start an upload"), url)
    }

    /// Asks the registry to mount the blob from another of its repositories: nil when it
    /// did (201); else a new upload session: the one it answers with when it has not the
    /// blob there (202), or a fresh one when the token may not pull from there (401, 403).
    func mount(_ digest: String, from source: String) throws -> (location: String, minimum: Int64)? {
        let url = reference.base + "/blobs/uploads/?mount=" + percentEncoded(digest) + "&from=" + percentEncoded(source)
        let answer = try request(url, method: "POST", accept: nil, allowing: [401, 403], what: "mount \(digest) from \(source)")
        if answer.status == 201 { return nil }
        return answer.status >= 300 ? try startUpload() : try uploadSession(answer, url)
    }

    private func uploadSession(_ answer: HTTPAnswer, _ url: String) throws -> (location: String, minimum: Int64) {
        guard answer.fields["location"] != nil else { throw PlashError.failure("the registry gave no upload location") }
        return (try nextLocation(answer, after: url), answer.fields["oci-chunk-min-length"].flatMap { Int64($0) } ?? 0)
    }

    /// PATCHes the blob in pieces of `chunk` bytes: the location for the PUT that ends
    /// the upload, or nil when the registry refused a chunk (404, 405, 416 or 501: no
    /// chunked uploads there, or a session it lost).
    func sendChunks(_ digest: String, fd: Int32, size: Int64, chunk: Int64, to start: String,
                    progress: DownloadProgress) throws -> String? {
        var location = start
        var offset: Int64 = 0
        while offset < size {
            let length = min(chunk, size - offset)
            let end = offset + length - 1
            let before = offset
            let answer = try request(location, method: "PATCH", accept: nil,
                                     headers: ["Content-Type: application/octet-stream", "Content-Range: \(offset)-\(end)"],
                                     upload: (fd, offset, length), allowing: [404, 405, 416, 501],
                                     what: "upload \(digest) bytes \(offset)-\(end)",
                                     progress: { sent, _ in progress.update(before + sent, size) })
            if answer.status >= 300 { return nil }
            // Range: 0-END (bytes=0-END in some registries) is what the registry holds.
            if let range = answer.fields["range"], let held = Int64(range.split(separator: "-").last ?? ""), held != end {
                throw PlashError.failure("upload \(digest): the registry holds bytes 0-\(held), not 0-\(end)")
            }
            location = try nextLocation(answer, after: location)
            offset += length
        }
        return location
    }

    /// Where the upload goes on: the answer's Location, relative to the URL asked; the
    /// same URL when it names none.
    func nextLocation(_ answer: HTTPAnswer, after url: String) throws -> String {
        guard let location = answer.fields["location"] else { return url }
        return try WebAddress(url).resolving(location).description
    }

    /// Asks the registry to drop an upload session that failed (the spec's DELETE); it
    /// would expire anyway, so an answer is not waited for long and errors are ignored.
    func cancelUpload(_ location: String) {
        _ = try? request(location, method: "DELETE", accept: nil, allowing: [400, 404, 405], timeout: 5)
    }
}

/// Where plash last saw each blob on each registry, so that a push to another of its
/// repositories can mount the blob instead of uploading it: a symlink
/// `$PLASH_DATA/blob-sources/HOST/sha256:HEX` to the repository's name (`library/alpine`),
/// replaced by each pull or push that finds the blob there. A hint only: an entry lost,
/// stale or unwritable costs an upload, never a pull or a push, so errors are ignored.
struct BlobSources {
    let directory: String

    init(_ store: Store) { directory = store.layout.blobSources }

    func repository(of digest: String, on registry: String) -> String? {
        guard let path = path(digest, registry), let name = readLink(path),
              let parsed = try? RegistryReference(registry + "/" + name),
              parsed.registry == registry, parsed.repository == name else { return nil }
        return name
    }

    func remember(_ digests: [String], on registry: String, repository: String) {
        guard isFileName(registry), mkdir(directory, 0o755) == 0 || errno == EEXIST,
              mkdir(directory + "/" + registry, 0o755) == 0 || errno == EEXIST else { return }
        for digest in digests {
            if let path = path(digest, registry) { try? replaceLink(path, target: repository) }
        }
    }

    private func path(_ digest: String, _ registry: String) -> String? {
        guard isFileName(registry), (try? blobPath(digest)) != nil else { return nil }
        return directory + "/" + registry + "/" + digest
    }

    /// Whether the registry's name is a file name of its own (not `..`, say).
    private func isFileName(_ registry: String) -> Bool {
        !registry.isEmpty && !registry.hasPrefix(".") && !registry.contains("/")
    }
}

/// Runs `body` with the layout's blob of `digest` open and its size.
func withBlobFile(_ layout: String, _ digest: String, _ body: (Int32, Int64) throws -> Void) throws {
    let file = layout + "/" + (try blobPath(digest))
    let fd = try check(open(file, O_RDONLY | O_CLOEXEC), "open", file)
    defer { close(fd) }
    var info = stat()
    try check(fstat(fd, &info), "stat", file)
    try body(fd, Int64(info.st_size))
}
