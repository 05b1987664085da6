#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PlashExec
import PlashSystem

/// An image's config (OCI image-spec config.md), kept in its top node:
///
///     layer/0/1/2/_config.json   this value, as JSON (what inspect shows, exports write)
///     layer/0/1/2/_config.exec   what plash-exec applies of it (PlashSystem's RunConfig)
///
/// Both are written into the node's staging before it is published, so a node has both
/// or neither. An import keeps the source's config; an image built on another gets its
/// parent's (Store.publish), changed by the build's config macros. `history` is kept only
/// where an import put it: the entries of the layers above are made from the nodes
/// themselves (`imageHistory`).
public struct ImageConfig: Codable, Equatable, Sendable {
    /// `{}`: the value of an ExposedPorts or Volumes entry.
    public struct Empty: Codable, Equatable, Sendable { public init() {} }

    /// The OCI config's `config` object: how the image's program runs.
    public struct Settings: Codable, Equatable, Sendable {
        public var User: String?
        public var ExposedPorts: [String: Empty]?
        public var Env: [String]?
        public var Entrypoint: [String]?
        public var Cmd: [String]?
        public var Volumes: [String: Empty]?
        public var WorkingDir: String?
        public var Labels: [String: String]?
        public var StopSignal: String?

        public init() {}

        /// What the image says, or nil when it says nothing (`{}`).
        var nonEmpty: Settings? { self == Settings() ? nil : self }
    }

    public struct History: Codable, Equatable, Sendable {
        public var created: String?
        public var created_by: String?
        public var author: String?
        public var comment: String?
        public var empty_layer: Bool?

        public init(created: String? = nil, created_by: String? = nil, author: String? = nil, comment: String? = nil,
                    empty_layer: Bool? = nil) {
            self.created = created
            self.created_by = created_by
            self.author = author
            self.comment = comment
            self.empty_layer = empty_layer
        }
    }

    public var created: String?
    public var author: String?
    public var config: Settings?
    public var history: [History]?

    public init(created: String? = nil, author: String? = nil, config: Settings? = nil, history: [History]? = nil) {
        self.created = created
        self.author = author
        self.config = config
        self.history = history
    }

    /// The config of an image whose source had none (a tar, busybox): what plash runs it
    /// with, its PATH. Config macros on such an image start from it.
    static var plashDefaults: ImageConfig {
        var settings = Settings()
        settings.Env = ["PATH=" + defaultPath]
        return ImageConfig(config: settings)
    }

    /// What plash-exec applies: the same value, in its own format.
    /// An empty User or WorkingDir (docker writes them so) says nothing.
    var runConfig: RunConfig {
        RunConfig(environment: config?.Env, entrypoint: config?.Entrypoint, command: config?.Cmd,
                  user: config?.User.flatMap { $0.isEmpty ? nil : $0 },
                  workingDirectory: config?.WorkingDir.flatMap { $0.isEmpty ? nil : $0 })
    }

    /// The config of a source (an OCI or docker config's JSON): every field plash keeps,
    /// as the source wrote it (docker's `"User": ""` too, which plash-exec takes for none).
    /// Keys of other programs (container_config, docker_version, rootfs) are left out.
    static func decodeSource(_ bytes: [UInt8], _ what: String) throws -> ImageConfig {
        var config = try decode(ImageConfig.self, bytes, what)
        config.config = config.config?.nonEmpty
        return config
    }

    /// Writes both files into `dir` (a staging node, before its rename into place).
    func write(into dir: String) throws {
        try writeBytes(StoreLayout.config(ofNode: dir), try ociJSON(self))
        try writeBytes(StoreLayout.execConfig(ofNode: dir), runConfig.encoded)
    }

    /// The config in `node`, nil when it has none.
    static func read(node: String) throws -> ImageConfig? {
        let path = StoreLayout.config(ofNode: node)
        guard let fd = try openKeptFile(path) else { return nil }
        guard fd >= 0 else { throw PlashError.failure("image config \(path): not a regular file") }
        defer { close(fd) }
        return try decode(ImageConfig.self, try readAll(fd, path: path, what: "read image config", limit: 16 << 20), path)
    }
}

/// The config that exports write and `plash inspect` shows: the image's, with its time
/// (its source's, else its top node's, else SOURCE_DATE_EPOCH) and its history. An image
/// whose source had no config (a tar, busybox) says what plash runs it with: its PATH,
/// and /.plash-entrypoint when an older plash built it with --entrypoint.
public func exportedConfig(_ image: Store.Image, store: Store) throws -> ImageConfig {
    let kept = try ImageConfig.read(node: image.node)
    var settings = (kept ?? .plashDefaults).config ?? ImageConfig.Settings()
    if kept == nil, hasEntrypoint(Array(store.layers(of: image).reversed())) { settings.Entrypoint = [entrypointPath] }
    return ImageConfig(created: try kept?.created ?? rfc3339(sourceDateEpoch() ?? publishedTime(image.node)),
                       author: kept?.author, config: settings, history: try imageHistory(image, store: store))
}

/// The time an OCI config writes, RFC 3339 in UTC: `2026-12-06T20:16:41Z`.
func rfc3339(_ seconds: Int) -> String {
    var time = time_t(seconds)
    var parts = tm()
    gmtime_r(&time, &parts)
    func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
    return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
        + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
}

/// $SOURCE_DATE_EPOCH (reproducible-builds.org): when set, the time exports write for
/// what plash built, so that an export made again has the same digests.
func sourceDateEpoch() throws -> Int? {
    guard let text = environment("SOURCE_DATE_EPOCH") else { return nil }
    guard let seconds = Int(text), seconds >= 0, text.allSatisfy(\.isASCIIDigit) else {
        throw PlashError.failure("SOURCE_DATE_EPOCH=\(text): not a number of seconds since 1970")
    }
    return seconds
}

/// When a node was published: the time of its `_script`, written just before the rename
/// (now, for a node without one).
func publishedTime(_ node: String) -> Int {
    var info = stat()
    return stat(StoreLayout.script(ofNode: node), &info) == 0 ? info.st_mtim.tv_sec : time(nil)
}

/// Whether a node holds no layer an export writes: plash built it (no imported blob) and
/// it changed no file. Such a node (a config macro's alone) is a history entry with
/// `empty_layer`, as docker writes for ENV or CMD.
func isEmptyLayer(_ layer: Store.Image) throws -> Bool {
    if let blob = try readLayerBlob(layer.node), blob.imported { return false }
    return directoryEntries(layer.data)?.isEmpty ?? false
}

/// The image's history, bottom first, as exports write it: what the topmost import among
/// its nodes kept of its source, then an entry for each node above (its build script as
/// `created_by`); a node without an import below gets one too. Times are the nodes', or
/// SOURCE_DATE_EPOCH's when set.
func imageHistory(_ image: Store.Image, store: Store) throws -> [ImageConfig.History] {
    let epoch = try sourceDateEpoch()
    var history: [ImageConfig.History] = []
    for layer in store.stack(of: image).reversed() {
        let node = layer.node
        if let kept = try ImageConfig.read(node: node)?.history {
            history = kept
            continue
        }
        // Opened as plash ls opens it: a FIFO planted as `_script` is not waited on.
        let script = (try? openToRead(StoreLayout.script(ofNode: node), what: "read")).flatMap { fd in
            defer { close(fd) }
            return (try? readAll(fd, path: StoreLayout.script(ofNode: node), what: "read", limit: 1 << 20)).map { String(decoding: $0, as: UTF8.self) }
        }
        history.append(ImageConfig.History(created: rfc3339(epoch ?? publishedTime(node)), created_by: script ?? "plash",
                                           empty_layer: try isEmptyLayer(layer) ? true : nil))
    }
    return history
}

/// The architecture an image's config names, in the image-spec's words (amd64): this
/// machine's, where plash imports and builds what runs here.
public let imageArchitecture = OCIPlatform.machine.architecture
