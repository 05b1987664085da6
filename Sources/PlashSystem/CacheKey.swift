/// The one maker of the store's cache keys (cache/KEY, tmp/key-KEY.lock, compiled seccomp
/// profiles): the SHA-256 (hex) of `plash KIND VERSION\0`, then each field followed by
/// `\0`, then raw bytes where a key covers a file's contents. The kind says what made
/// the key, so two kinds never share one; VERSION goes up when what a kind covers
/// changes, and every key of that kind then misses once (nothing is rebuilt that need
/// not be: the old images stay, their keys unused).
///
/// The kinds, each made in one place: `layer` (Builder.cacheKey), `image config`
/// (importLayers), `layout` (layoutKey), `import busybox`, `import-url`, `import-lxc`,
/// `import-lxc reference`, `import-debootstrap`, `import-docker reference`,
/// `import-docker manifest`, `seccomp`, `seccomp profile`; and the layer chain
/// (`layerChain`), older than this convention.
public struct CacheKey {
    private var hash = SHA256()

    public init(_ kind: String, version: Int = 1) {
        hash.update("plash \(kind) \(version)\0")
    }

    /// A field; the NUL after it keeps `a`,`bc` apart from `ab`,`c`.
    public mutating func add(_ field: String) { hash.update(field + "\0") }

    /// Bytes as they are: the last thing a key covers, or one whose length came before.
    public mutating func add(bytes: [UInt8]) { hash.update(bytes) }

    /// What a caller hashes itself (a tree of files, streamed).
    public mutating func update(_ body: (inout SHA256) throws -> Void) rethrows { try body(&hash) }

    public mutating func hex() -> String { hash.hexDigest() }

    /// The key of `fields` of `kind`.
    public static func of(_ kind: String, version: Int = 1, _ fields: String...) -> String {
        var key = CacheKey(kind, version: version)
        for field in fields { key.add(field) }
        return key.hex()
    }

    /// An imported layer's key: the chain of diff_ids below it and its own, as plash has
    /// written it since before the convention above (`oci-layer\nPARENT\nDIFF_ID`, no
    /// version). Kept byte for byte: a new form would make every stored layer miss, and
    /// a pull download again what the store holds.
    public static func layerChain(parent: String, diffID: String) -> String {
        var hash = SHA256()
        hash.update("oci-layer\n" + parent + "\n" + diffID)
        return hash.hexDigest()
    }
}
