#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PlashSystem

/// The image server that `import-lxc` and `--from NAME[:RELEASE]` use: $PLASH_LXC_SERVER,
/// else images.linuxcontainers.org.
public var lxcServer: String {
    let server = environment("PLASH_LXC_SERVER").flatMap { $0.isEmpty ? nil : $0 } ?? "https://images.linuxcontainers.org"
    return server.hasSuffix("/") ? String(server.dropLast()) : server
}

public let lxcSource = ImageSourceKind(
    name: "lxc", synopsis: "NAME[:RELEASE]", macro: "--from-lxc",
    macroHelp: "start from an image of the LXC image server (PLASH_LXC_SERVER), resolved once",
    commands: [.init("import-lxc", help: "Import an image server's root filesystem (PLASH_LXC_SERVER, default images.linuxcontainers.org) and print its id.",
                     refresh: .optional, refreshHelp: "resolve NAME[:RELEASE] on the server again, though it was resolved before")],
    hint: { $0[0] }
) { arguments, caller in
    guard isLXCReference(arguments[0]) else {
        throw PlashError.usage("\(caller.name) \(arguments[0]): not a NAME[:RELEASE]", usage: caller.usage)
    }
    return LXCSource(reference: arguments[0])
}

struct LXCSource: ImageSource {
    let reference: String
    var cacheKey: String? { lxcReferenceKey(reference) }
    func importImage(_ context: ImportContext) throws -> Store.Image {
        try importLXC(reference, refresh: context.refresh, store: context.store, log: context.log)
    }
}

/// One line of an image server's `/meta/1.0/index-system`:
/// `distro;release;arch;variant;date;path/`, the image being PATH/rootfs.tar.xz.
struct LXCImage {
    var distro, release, architecture, variant, date, path: String
}

/// `plash import-lxc NAME[:RELEASE]`, and `--from NAME[:RELEASE]` for a name that is no
/// image here: the root filesystem of an image server in the LXC format. A reference
/// is resolved once: later builds of it touch no network, unless `refresh` asks to
/// resolve it again (a build of the same date is not downloaded twice).
public func importLXC(_ reference: String, refresh: Bool = false, store: Store, log: (String) -> Void) throws -> Store.Image {
    let server = lxcServer
    let parts = reference.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
    let name = parts[0], release = parts.count == 2 ? parts[1] : nil
    let referenceKey = lxcReferenceKey(reference)
    if !refresh, let hit = store.cached(referenceKey) { return hit }
    // Resolved names are kept per server: the store's NAME from another server (a shell
    // without that PLASH_LXC_SERVER) is not this one's, but say where it is.
    let elsewhere = lxcServers(of: name, release: release, in: store).first { $0 != server }
    let advice = elsewhere.map { "the store's \(name) came from \($0): PLASH_LXC_SERVER=\($0)" }
    if let advice { log("--> \(reference) from \(server); \(advice)") }
    do {
        // Checked first: each URL below would name the bad server again.
        do { _ = try WebAddress(server) } catch let error as PlashError { throw error.context("PLASH_LXC_SERVER") }
        let indexURL = server + "/meta/1.0/index-system"
        let index: String
        // images.linuxcontainers.org's is about 200 KiB.
        do {
            index = String(decoding: try httpGet(indexURL, limit: 16 << 20), as: UTF8.self)
        } catch let error as PlashError {
            throw error.context(indexURL)
        }
        let image = try pickLXCImage(index, name: name, release: release, architecture: debianArchitecture(), server: server)
        let directory = server + (image.path.hasPrefix("/") ? "" : "/") + image.path + (image.path.hasSuffix("/") ? "" : "/")
        let url = directory + "rootfs.tar.xz"
        let imageKey = CacheKey.of("import-lxc", server, image.distro, image.release, image.architecture, image.variant, image.date)
        let imported: Store.Image
        do {
            imported = try downloadAndImport(url, key: imageKey, refresh: false,
                                             sha256: { try rootfsChecksum(directory, server: server) },
                                             script: "import-lxc \(image.distro):\(image.release) \(image.date) from \(server)",
                                             store: store, log: log)
        } catch let error as PlashError {
            throw error.context(url)
        }
        try store.remember(referenceKey, imported)
        return imported
    } catch let error as PlashError where advice != nil {
        throw error.context("import-lxc \(reference)").advising(error.advice.map { $0 + "; " + advice! } ?? advice!)
    } catch {
        throw error.context("import-lxc \(reference)")
    }
}

/// The servers the store's imports of NAME[:RELEASE] came from, as their scripts say
/// (`import-lxc alpine:3.19 20260101_00:00 from SERVER`).
func lxcServers(of name: String, release: String?, in store: Store) -> [String] {
    store.images().compactMap { image in
        let words = firstLine(image.node + "/_script").split(separator: " ").map(String.init)
        guard words.count == 5, words[0] == "import-lxc", words[3] == "from" else { return nil }
        let imported = words[1].split(separator: ":", maxSplits: 1).map(String.init)
        guard imported[0] == name, release == nil || imported.last == release else { return nil }
        return words[4]
    }
}

/// The cache key of NAME[:RELEASE] resolved on the image server.
func lxcReferenceKey(_ reference: String) -> String {
    CacheKey.of("import-lxc reference", lxcServer, reference)
}

/// The server that $PLASH_LXC_UNCHECKED names publishes no SHA256SUMS: its images are
/// imported unchecked.
var lxcUncheckedServer: String? {
    guard let server = environment("PLASH_LXC_UNCHECKED"), !server.isEmpty else { return nil }
    return server.hasSuffix("/") ? String(server.dropLast()) : server
}

/// rootfs.tar.xz's SHA-256 (hex) as the SHA256SUMS beside it lists it, in sha256sum's
/// format (`HEX  NAME`, `HEX *NAME`): images.linuxcontainers.org and its mirrors publish
/// one in every image directory. Without one the import is refused, unless
/// $PLASH_LXC_UNCHECKED names the server: then nil.
func rootfsChecksum(_ directory: String, server: String) throws -> String? {
    let url = directory + "SHA256SUMS"
    var body = BoundedBody(nil, limit: 1 << 20)
    let answer: HTTPAnswer
    do {
        answer = try httpRequest(url) { try body.append($0) }
    } catch let error as PlashError {
        throw error.context("SHA256SUMS")
    }
    if answer.status == 404 {
        if lxcUncheckedServer == server { return nil }
        throw PlashError.failure("no SHA256SUMS beside it to check it against (HTTP 404)")
            .advising("a server without one is trusted only when PLASH_LXC_UNCHECKED=\(server)")
    }
    guard (200..<300).contains(answer.status) else { throw PlashError.failure("SHA256SUMS: HTTP \(answer.status) \(answer.reason)") }
    for line in String(decoding: body.bytes, as: UTF8.self).split(separator: "\n") {
        let hex = line.prefix { !$0.isWhitespace }.lowercased()
        let name = line.dropFirst(hex.count).drop { $0 == " " || $0 == "\t" }
        if isHexDigest(hex), trimmed(name.hasPrefix("*") ? name.dropFirst() : name) == "rootfs.tar.xz" { return hex }
    }
    throw PlashError.failure("SHA256SUMS lists no rootfs.tar.xz")
}

/// A name (`alpine`, `alpine:3.23`) that could be an image server's: no path, no blanks.
public func isLXCReference(_ reference: String) -> Bool {
    let parts = reference.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
    return parts.allSatisfy { part in
        !part.isEmpty && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    } && !parts[0].hasPrefix("-") && !parts[0].hasPrefix(".")
}

/// The image for NAME[:RELEASE] on this machine's architecture (variant `default`).
/// Without a release: the highest numbered one (3.23 after 3.9), else the last listed.
/// Of one release, the newest build.
func pickLXCImage(_ index: String, name: String, release: String?, architecture: String, server: String) throws -> LXCImage {
    let ours = index.split(separator: "\n").compactMap { line -> LXCImage? in
        let fields = line.split(separator: ";", omittingEmptySubsequences: false).map { trimmed($0) }
        // A line with a field missing, or whose path would climb out of the server's
        // tree (a mirror's prefix) with `..`, plain or percent-encoded, names no image.
        guard fields.count >= 6, !fields[..<6].contains(where: \.isEmpty),
              !fields[5].split(separator: "/").contains(where: { $0 == ".." || $0.contains("%") }) else { return nil }
        return LXCImage(distro: fields[0], release: fields[1], architecture: fields[2], variant: fields[3], date: fields[4], path: fields[5])
    }.filter { $0.architecture == architecture && $0.variant == "default" }
    let named = ours.filter { $0.distro == name }
    guard !named.isEmpty else {
        let names = Set(ours.map(\.distro)).sorted()
        throw PlashError.failure("\(server) has no image \(name) for \(architecture) (it has: \(listed(names)))")
    }
    let chosen: String
    if let release {
        chosen = release
    } else {
        let numbered = named.map(\.release).filter { $0.first?.isNumber == true }
        chosen = numbered.max { versionLess($0, $1) } ?? named.last!.release
    }
    guard let image = named.filter({ $0.release == chosen }).max(by: { $0.date < $1.date }) else {
        var releases: [String] = []
        for image in named where !releases.contains(image.release) { releases.append(image.release) }
        throw PlashError.failure("\(server) has no release \(chosen) of \(name) (it has: \(listed(releases)))")
    }
    return image
}

/// Names for a one-line message: the first 20, and how many more (a server may list
/// thousands).
func listed(_ names: [String]) -> String {
    if names.isEmpty { return "none" }
    let shown = names.prefix(20).joined(separator: ", ")
    return names.count > 20 ? shown + " and \(names.count - 20) more" : shown
}

/// 3.9 < 3.23: numeric parts compared as numbers.
func versionLess(_ a: String, _ b: String) -> Bool {
    let left = a.split(separator: "."), right = b.split(separator: ".")
    for (x, y) in zip(left, right) where x != y {
        if let m = Int(x), let n = Int(y) { return m < n }
        return x < y
    }
    return left.count < right.count
}
