#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PlashSystem

// Pulling from registries (Docker Registry HTTP API v2, OCI distribution), spoken to
// directly: the manifest, the config and the layers the store lacks are downloaded into
// a staging directory laid out as an OCI layout, checked against their digests, and
// imported as import-oci imports, so a pulled image shares its layers with OCI imports.

public let dockerSource = ImageSourceKind(
    name: "docker", synopsis: "REF", macro: "--from-docker",
    macroHelp: "start from a registry's image ([HOST[:PORT]/]NAME[:TAG][@sha256:DIGEST], docker.io by default), pulled once",
    commands: [
        .init("import-docker", help: "Pull a registry's image ([HOST[:PORT]/]NAME[:TAG][@sha256:DIGEST], docker.io by default) once and print its id.",
              refresh: .optional, refreshHelp: "resolve REF on the registry again and download only the layers that changed"),
        .init("pull", help: "Resolve a registry's REF again, download only the layers the store lacks, and print its id.", refresh: .always),
    ],
    hint: { "(registry \($0[0]))" }
) { arguments, caller in
    do {
        return RegistrySource(reference: try RegistryReference(arguments[0]), text: arguments[0])
    } catch let error as PlashError {
        throw PlashError.usage("\(caller.name): " + (error.reason ?? arguments[0]), usage: caller.usage)
    }
}

struct RegistrySource: ImageSource {
    let reference: RegistryReference
    let text: String
    var cacheKey: String? { reference.cacheKey }
    func importImage(_ context: ImportContext) throws -> Store.Image {
        try importDocker(text, refresh: context.refresh, command: context.command ?? "import-docker", store: context.store,
                         inUserNamespace: context.inUserNamespace, log: context.log)
    }
}

/// A reference as docker reads it (ImageReference's grammar), normalised: `alpine` is
/// docker.io/library/alpine:latest.
public struct RegistryReference: Equatable, Sendable {
    public var registry: String     // host[:port] as written ("docker.io" for Docker Hub)
    public var repository: String   // library/alpine
    public var tag: String?
    public var digest: String?

    public init(_ text: String) throws {
        guard let parsed = ImageReference(text) else {
            throw PlashError.failure("\(text): not a registry reference ([HOST[:PORT]/]NAME[:TAG][@sha256:DIGEST])")
        }
        registry = parsed.host ?? "docker.io"
        var parts = parsed.components
        if registry == "docker.io" && parts.count == 1 { parts.insert("library", at: 0) }
        repository = parts.joined(separator: "/")
        tag = parsed.tag
        digest = parsed.digest
        if tag == nil && digest == nil { tag = "latest" }
    }

    /// The build-cache key that names the image this reference was pulled as.
    public var cacheKey: String {
        CacheKey.of("import-docker reference", registry, repository, manifestReference)
    }

    /// What the manifest is asked for by: the digest where one is given.
    var manifestReference: String { digest ?? tag! }

    /// docker.io's API lives on registry-1.docker.io.
    var host: String { registry == "docker.io" ? "registry-1.docker.io" : registry }

    /// Plain HTTP for registries on this machine's loopback (its addresses, not names
    /// that look like them), as docker does; HTTPS elsewhere.
    var base: String {
        let name = host.hasPrefix("[") ? String(host.prefix { $0 != "]" }.dropFirst()) : String(host.prefix { $0 != ":" })
        return (isLoopback(name) ? "http://" : "https://") + host + "/v2/" + repository
    }
}

/// `plash import-docker REF`, `plash pull REF` and `--from-docker REF`. A reference is
/// resolved once: later imports of it touch no network, unless `refresh` asks to resolve
/// it again (then a manifest imported before downloads no blob, and otherwise only the
/// layers the store lacks are downloaded). Errors name `command` (`pull`).
public func importDocker(_ text: String, refresh: Bool = false, command: String = "import-docker", store: Store,
                         inUserNamespace: Bool, log: (String) -> Void) throws -> Store.Image {
    do {
        let reference = try RegistryReference(text)
        let referenceKey = reference.cacheKey
        // Two pulls of one reference at once: the second waits, then finds the first's
        // image rather than downloading and importing the same layers again. The staging
        // is the download area, an OCI layout that importLayers imports.
        return try store.makeOnce(referenceKey, refresh: refresh, staging: "import-docker") { staging in
            let session = RegistrySession(reference)
            try check(mkdir(staging.data, 0o700), "create", staging.data)
            try check(mkdir(staging.data + "/blobs", 0o700), "create", staging.data + "/blobs")
            try check(mkdir(staging.data + "/blobs/sha256", 0o700), "create", staging.data + "/blobs/sha256")
            let layout = try check(open(staging.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open", staging.data)
            defer { close(layout) }

            // Asked for by tag or digest: checked against the digest where one is given.
            let (first, firstType) = try session.manifest(reference.manifestReference, digest: reference.digest)
            let (bytes, manifest) = try resolveManifest(first, type: firstType, blobs: session)
            // An image manifest imported before (a pull of a tag that did not move, or of the
            // digest another tag named) is that image: its config and layers are not asked for.
            var manifestHash = CacheKey("import-docker manifest")
            manifestHash.add(bytes: bytes)
            let manifestKey = manifestHash.hex()
            // Before anything is downloaded (importLayers would refuse it after).
            if let tooDeep = StoreLayout.tooDeep(manifest.layers.count) { throw PlashError.failure(tooDeep) }
            let blobs = manifest.layers.map(\.digest) + [manifest.config.digest]
            if let hit = store.cached(manifestKey) {
                try store.remember(referenceKey, hit)
                BlobSources(store).remember(blobs, on: reference.registry, repository: reference.repository)
                return hit
            }
            let (configBytes, layers) = try resolveLayers(manifest, blobs: session)
            // Only the layers above the topmost one the store has are downloaded.
            let present = layerKeys(layers).lastIndex { store.cached($0) != nil }
            for (index, layer) in layers.enumerated() where index > (present ?? -1) {
                log("--> download layer \(index + 1)/\(layers.count) \(layer.digest!)")
                log(try session.download(layer.digest!, size: manifest.layers[index].size, to: staging.data + "/" + layer.path))
                log("--:")
            }
            // Each download was checked against its digest as it arrived: not read twice.
            let downloaded = layers.map { SourceLayer(path: $0.path, digest: $0.digest, size: $0.size, diffID: $0.diffID, checked: true) }
            // A layer that was present but went since (plash rm) is downloaded when it is needed.
            let image = try importLayers(downloaded, layout: layout, linkBlobs: true, store: store, inUserNamespace: inUserNamespace,
                                         script: "import-docker \(reference.registry)/\(reference.repository)",
                                         config: try ImageConfig.decodeSource(configBytes, manifest.config.digest), fetch: { index in
                log("--> download layer \(index + 1)/\(layers.count) \(layers[index].digest!)")
                log(try session.download(layers[index].digest!, size: manifest.layers[index].size,
                                         to: staging.data + "/" + layers[index].path))
                log("--:")
            }, log: log)
            try store.remember(manifestKey, image)
            try store.remember(referenceKey, image)
            BlobSources(store).remember(blobs, on: reference.registry, repository: reference.repository)
            return image
        }
    } catch {
        throw error.context("\(command) \(text)")
    }
}

/// The requests of one pull, with the credentials and the token the registry asked for.
final class RegistrySession {
    let reference: RegistryReference
    let credentials: String?   // base64 of user:password
    var authorization: String?
    /// The scopes a token is asked for, when set; else the challenge's, else pull of the
    /// repository. A push wants pull,push from the first request on, and pull of each
    /// repository it mounts blobs from.
    var scopes: [String] = []

    init(_ reference: RegistryReference) {
        self.reference = reference
        credentials = registryCredentials(reference.registry)
    }

    /// The manifest and the type the registry says it has, checked against `digest`
    /// (and `size`) when one is known.
    func manifest(_ name: String, digest: String?, size: Int? = nil) throws -> ([UInt8], String) {
        var body = BoundedBody("manifest \(name)", limit: 4 << 20)   // as containers/image and containerd
        let answer = try request("/manifests/" + name, accept: MediaType.manifests, body: { try body.append($0) })
        if let digest { try VerifiedBlob.check(body.bytes, digest: digest, size: size, "manifest \(name)") }
        return (body.bytes, answer.fields["content-type"].map { String($0.prefix { $0 != ";" }) } ?? "")
    }

    /// A blob of JSON (the config) of the `size` its descriptor announces, checked
    /// against its digest.
    func smallBlob(_ digest: String, size: Int) throws -> [UInt8] {
        _ = try blobPath(digest)
        var body = BoundedBody("blob \(digest)", limit: 64 << 20)
        var verified = VerifiedBlob("blob \(digest)", digest: digest, size: size)
        try request("/blobs/" + digest, accept: nil, body: { piece in
            try verified.update(piece)
            try body.append(piece)
        })
        try verified.finish()
        return body.bytes
    }

    /// A layer of the `size` its descriptor announces into `path`, checked against its
    /// size and digest as it arrives; the line that says how much came how fast.
    func download(_ digest: String, size: Int, to path: String) throws -> String {
        let fd = try check(open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600), "create", path)
        defer { close(fd) }
        var verified = VerifiedBlob("blob \(digest)", digest: digest, size: size)
        var room = DiskRoom(directory: path)
        let progress = DownloadProgress()
        try request("/blobs/" + digest, accept: nil, progress: progress.update, body: { piece in
            try verified.update(piece)
            try room.take(piece.count)
            try writeAll(fd, Array(piece), path: path)
        })
        try verified.finish()
        return progress.finish()
    }

    /// Asks for BASE/PATH (or an absolute URL); a 401 is answered once with the
    /// credentials or the token that its WWW-Authenticate asks for. Other statuses but
    /// 2xx and `allowing` are errors, which name `what` (else the URL). Credentials and
    /// tokens go to the registry's own scheme, host and port only: an absolute URL it
    /// answered with (an upload's Location) may name another host, which gets none.
    @discardableResult
    func request(_ path: String, method: String = "GET", accept: [String]?, headers extra: [String] = [],
                 upload: (fd: Int32, offset: Int64, size: Int64)? = nil, allowing: [Int] = [], what: String? = nil,
                 timeout: Int = httpTimeout, progress: ((Int64, Int64?) -> Void)? = nil,
                 body: ((UnsafeRawBufferPointer) throws -> Void)? = nil) throws -> HTTPAnswer {
        let url = path.hasPrefix("http://") || path.hasPrefix("https://") ? path : reference.base + path
        let own = try origin(url) == origin(reference.base)
        // An answer nobody reads (an upload's) is read and dropped, but not without end.
        var ignored = BoundedBody(what ?? url, limit: 1 << 20)
        let body = body ?? { try ignored.append($0) }
        for attempt in 0..<2 {
            var headers = (accept.map { ["Accept: " + $0.joined(separator: ", ")] } ?? []) + extra
            if let authorization, own { headers.append("Authorization: " + authorization) }
            let answer = try httpRequest(url, method: method, headers: headers, upload: upload, timeout: timeout,
                                         progress: progress, body: body)
            if (200..<300).contains(answer.status) { return answer }
            if answer.status == 401 && attempt == 0 && own, let challenge = answer.fields["www-authenticate"] {
                try authenticate(challenge)
                continue
            }
            if allowing.contains(answer.status) { return answer }
            var why = "HTTP \(answer.status) \(answer.reason)"
            if answer.status == 401 {
                why += !own ? ": credentials go to \(reference.registry) only"
                    : credentials == nil ? ": no credentials for \(reference.registry)" : ": credentials refused"
            }
            throw PlashError.failure("\(what ?? url): \(why)")
        }
        throw PlashError.failure("\(what ?? url): HTTP 401")
    }

    /// scheme://host:port of a URL.
    private func origin(_ url: String) throws -> String {
        let address = try WebAddress(url)
        return address.scheme + "://" + address.authority
    }

    /// `Basic realm=…` wants the credentials; `Bearer realm=…,service=…,scope=…` wants a
    /// token from the realm, asked for with the credentials if there are any.
    func authenticate(_ challenge: String) throws {
        let scheme = challenge.prefix { $0 != " " }.lowercased()
        if scheme == "basic" {
            guard let credentials else { throw PlashError.failure("\(reference.registry): no credentials (docker login, or $REGISTRY_AUTH_FILE)") }
            authorization = "Basic " + credentials
            return
        }
        guard scheme == "bearer" else { throw PlashError.failure("\(reference.registry): unknown authentication \(scheme)") }
        let parameters = challengeParameters(String(challenge.dropFirst(scheme.count)))
        guard let realm = parameters["realm"] else { throw PlashError.failure("\(reference.registry): a Bearer challenge without a realm") }
        var query: [String] = []
        if let service = parameters["service"] { query.append("service=" + percentEncoded(service)) }
        for scope in scopes.isEmpty ? [parameters["scope"] ?? "repository:\(reference.repository):pull"] : scopes {
            query.append("scope=" + percentEncoded(scope))
        }
        let url = realm + (realm.contains("?") ? "&" : "?") + query.joined(separator: "&")
        // The realm is the registry's to name, and may be anywhere: the credentials go
        // there only where they may go at all.
        let address = try WebAddress(url)
        if credentials != nil, !mayCarryCredentials(address, proxy: try proxyAddress(for: address)) {
            throw PlashError.failure("token \(realm): credentials go over https only, or over http to this machine")
        }
        // A token is a few KiB: an endless answer must not fill the memory.
        var body = BoundedBody("token \(realm)", limit: 1 << 20)
        let answer = try httpRequest(url, headers: credentials.map { ["Authorization: Basic " + $0] } ?? []) { try body.append($0) }
        guard (200..<300).contains(answer.status) else {
            throw PlashError.failure("token \(realm): HTTP \(answer.status) \(answer.reason)")
        }
        let token = try decode(TokenAnswer.self, body.bytes, "token \(realm)")
        guard let value = token.token ?? token.access_token else { throw PlashError.failure("token \(realm): no token in the answer") }
        authorization = "Bearer " + value
    }
}

/// A registry's blobs, over HTTP, for the resolver.
extension RegistrySession: BlobFetcher {
    func manifest(_ descriptor: OCIDescriptor) throws -> (bytes: [UInt8], type: String) {
        try manifest(descriptor.digest, digest: descriptor.digest, size: descriptor.size)
    }
    func smallBlob(_ descriptor: OCIDescriptor) throws -> [UInt8] {
        try smallBlob(descriptor.digest, size: descriptor.size)
    }
}

struct TokenAnswer: Decodable { var token: String?; var access_token: String? }

/// The layers' cache keys, bottom first: the chain of diff_ids (see importLayers).
func layerKeys(_ layers: [SourceLayer]) -> [String] {
    var keys: [String] = []
    var chain = ""
    for layer in layers {
        chain = CacheKey.layerChain(parent: chain, diffID: layer.diffID)
        keys.append(chain)
    }
    return keys
}

/// `realm="https://…",service="…",scope="…"` as a dictionary (quoted values may hold commas).
func challengeParameters(_ text: String) -> [String: String] {
    var result: [String: String] = [:]
    var rest = Substring(text)
    while true {
        rest = rest.drop { $0 == " " || $0 == "," }
        guard let equals = rest.firstIndex(of: "=") else { return result }
        let name = rest[..<equals].lowercased()
        rest = rest[rest.index(after: equals)...]
        var value = ""
        if rest.first == "\"" {
            rest = rest.dropFirst()
            let close = rest.firstIndex(of: "\"") ?? rest.endIndex
            value = String(rest[..<close])
            rest = close < rest.endIndex ? rest[rest.index(after: close)...] : ""
        } else {
            let end = rest.firstIndex(of: ",") ?? rest.endIndex
            value = trimmed(rest[..<end])
            rest = rest[end...]
        }
        result[name] = value
    }
}

func percentEncoded(_ text: String) -> String {
    text.utf8.map { byte in
        let c = Character(Unicode.Scalar(byte))
        return byte < 128 && (c.isLetter || c.isNumber || "-._~:/".contains(c)) ? String(c) : "%" + String(byte, radix: 16, uppercase: true).leftPadded(2)
    }.joined()
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

/// The base64 user:password that $REGISTRY_AUTH_FILE, else ~/.docker/config.json, holds
/// for `registry` (its `auths` key: the host, maybe with a scheme; Docker Hub's
/// https://index.docker.io/v1/ too).
func registryCredentials(_ registry: String) -> String? {
    let file = environment("REGISTRY_AUTH_FILE").flatMap { $0.isEmpty ? nil : $0 }
        ?? environment("HOME").map { $0 + "/.docker/config.json" }
    guard let file, let bytes = try? readFile(file, what: "read", limit: 1 << 20),
          let config = try? JSONDecoder().decode(DockerConfig.self, from: Data(bytes)) else { return nil }
    var names = [registry, "https://" + registry, "http://" + registry]
    if registry == "docker.io" { names += ["https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io"] }
    for name in names {
        for (key, entry) in config.auths ?? [:] where key == name || key == name + "/" {
            if let auth = entry.auth, !auth.isEmpty { return auth }
        }
    }
    return nil
}

struct DockerConfig: Decodable {
    struct Entry: Decodable { var auth: String? }
    var auths: [String: Entry]?
}

