#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PlashSystem

public let tarSource = ImageSourceKind(
    name: "tar", synopsis: "[FILE|-]", operands: [.optional(.file)], macro: nil,
    commands: [.init("import-tar", help: "Import a root filesystem from a tar (plain, gzip, xz, zstd, bzip2; default: stdin) and print its id.")],
    hint: { $0.first ?? "-" }
) { arguments, caller in
    // Nobody types a tar archive: without FILE on a terminal, say what it waits for.
    if arguments.isEmpty && isatty(0) == 1 {
        throw PlashError.usage("\(caller.name): no FILE, and stdin is a terminal: give FILE, or pipe the archive in (plash import-tar - < root.tar)",
                               usage: caller.usage)
    }
    return TarSource(file: arguments.first ?? "-")
}

struct TarSource: ImageSource {
    let file: String
    /// A tar is read as it comes (a pipe, a FIFO): imported each time.
    var cacheKey: String? { nil }
    func importImage(_ context: ImportContext) throws -> Store.Image { try importTar(file, store: context.store, log: context.log) }
}

public let urlSource = ImageSourceKind(
    name: "url", synopsis: "URL", macro: "--from-url",
    macroHelp: "start from a root filesystem tar (plain, gz, xz, zstd, bz2) downloaded from URL once",
    commands: [.init("import-url", help: "Import a root filesystem tar downloaded from URL (once: again with --refresh) and print its id.",
                     refresh: .optional, refreshHelp: "download it again, though an earlier import of URL exists")],
    hint: { $0[0] }
) { arguments, caller in
    try checkURL(arguments[0], usage: caller.usage)
    return URLSource(url: arguments[0])
}

struct URLSource: ImageSource {
    let url: String
    var cacheKey: String? { urlKey(url) }
    func importImage(_ context: ImportContext) throws -> Store.Image {
        try importURL(url, refresh: context.refresh, store: context.store, log: context.log)
    }
}

/// `plash import-tar FILE|-`: a root filesystem from a tar archive, read and extracted
/// in one pass into a staging directory, which becomes the image only when every entry
/// is in place.
public func importTar(_ file: String, store: Store, log: (String) -> Void) throws -> Store.Image {
    let shown = file == "-" ? "stdin" : file
    do {
        return try store.withStaging("import") { staging in
            // A FIFO is read as it comes (`import-tar <(...)`), never waited on without a writer.
            let fd = file == "-" ? 0 : try openToRead(file, what: "open")
            defer { if fd != 0 { close(fd) } }
            log("--> import-tar \(shown)")
            try extractArchive(fd, into: staging, log: log)
            return try store.publish(staging, parentNode: store.rootNode, script: "import-tar \(shown)", key: nil)
        }
    } catch {
        throw error.context("import-tar \(shown)")
    }
}

/// `plash import-url URL` and `--from-url URL`: a root filesystem tar over HTTP(S),
/// imported as import-tar does. A URL is downloaded once: later imports of it touch no
/// network, unless `refresh` asks to download it again.
public func importURL(_ url: String, refresh: Bool = false, store: Store, log: (String) -> Void) throws -> Store.Image {
    do {
        return try downloadAndImport(url, key: urlKey(url), refresh: refresh, script: "import-url \(url)", store: store, log: log)
    } catch {
        throw error.context("import-url \(url)")
    }
}

/// The cache key of a URL's image.
func urlKey(_ url: String) -> String {
    CacheKey.of("import-url", url)
}

/// The image of cache key `key`, else (or with `refresh`) the tar at `url` downloaded
/// and imported; checked, as it arrives, against the SHA-256 (hex) that `sha256` gives.
func downloadAndImport(_ url: String, key: String, refresh: Bool, sha256: () throws -> String? = { nil }, script: String,
                       store: Store, log: (String) -> Void) throws -> Store.Image {
    // Downloaded into staging (Store.makeOnce).
    try store.makeOnce(key, refresh: refresh) { staging in
        let expected = try sha256()
        log("--> \(script)")
        let archive = staging.path + "/archive"
        let fd = try check(open(archive, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600), "create", archive)
        defer { close(fd) }
        let progress = DownloadProgress()
        var first = DownloadStart(directory: staging.path)
        var room = DiskRoom(directory: staging.path)
        var verified = expected.map { VerifiedBlob("the download, against SHA256SUMS", digest: "sha256:" + $0) }
        try httpGet(url, progress: { first.total = $1; progress.update($0, $1) }) { piece in
            try first.check(piece)
            try room.take(piece.count)
            try verified?.update(piece)
            try writeAll(fd, Array(piece), path: archive)
        }
        log(progress.finish())
        try verified?.finish()
        let input = try check(open(archive, O_RDONLY | O_CLOEXEC), "open", archive)
        defer { close(input) }
        // Unlinked at once: the staging directory becomes the image's node.
        unlink(archive)
        log("extracting...")   // a large root takes a while after the download's last line
        try extractArchive(input, into: staging, log: log)
        return try store.publish(staging, parentNode: store.rootNode, script: script, key: key)
    }
}

/// Whether a 512-byte block is a tar header: its checksum field (octal) is the sum of
/// its bytes with that field as spaces, unsigned (POSIX) or signed (some old tars).
func tarChecksumMatches(_ block: [UInt8]) -> Bool {
    let digits = block[148..<156].filter { $0 != 0 && $0 != UInt8(ascii: " ") }
    guard !digits.isEmpty, let stored = Int(String(decoding: digits, as: UTF8.self), radix: 8) else { return false }
    var unsigned = 8 * 32, signed = 8 * 32
    for index in 0..<512 where index < 148 || index >= 156 {
        unsigned += Int(block[index])
        signed += Int(Int8(bitPattern: block[index]))
    }
    return stored == unsigned || stored == signed
}

/// Reads the tar on `fd` (plain, gzip, xz, zstd or bzip2, told by their magic bytes)
/// and extracts it in one pass by plash itself (TarReader, TarExtractor) into the
/// staging root. Owners, modes, links, device nodes (where the process may make them)
/// and capabilities are kept.
func extractArchive(_ fd: Int32, into staging: Staging, log: (String) -> Void) throws {
    try check(mkdir(staging.data, 0o755), "create", staging.data)
    let root = try check(open(staging.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open", staging.data)
    defer { close(root) }
    let input = try ArchiveInput(fd: fd)
    var reader = TarReader(input)
    var extractor = TarExtractor(root: root)
    try extractor.extractAll(&reader)
    // A compressed stream's end (gzip's length and CRC, xz's index, bzip2's and zstd's
    // end marks) lies past the tar's: read to it, so that a cut stream fails.
    if input.format != "plain" { try input.drain() }
    log("\(reader.entries) entries")
    if extractor.skippedDevices > 0 {
        log("skipped \(extractor.skippedDevices) device nodes: only root may create them")
    }
    if extractor.unmappedOwners > 0 {
        log("\(extractor.unmappedOwners) entries are owned by you: their owners have no id here "
            + "(no subordinate ids in /etc/subuid, see docs/unprivileged.md)")
    }
    log("--:")
}
