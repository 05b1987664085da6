#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PlashSystem

/// The built-in image: the host's static busybox (Debian's busybox-static) with a link
/// for each applet, so the quick start needs no network.
public let busyboxBinary = "/bin/busybox"

/// The images that plash makes without a store or a network (`plash import NAME`, `--from NAME`).
public let builtinImages = ["busybox"]

/// `plash import busybox`, and `--from busybox` when no image here has that name.
public let busyboxSource = ImageSourceKind(
    name: "busybox", synopsis: "busybox", operands: [.words(builtinImages)], macro: nil,
    commands: [.init("import", help: "Import a built-in image and print its id.")],
    privilege: .user, hint: { _ in "busybox" }
) { arguments, _ in
    guard builtinImages.contains(arguments[0]) else {
        // `plash import alpine`: where an image of that name may come from.
        let name = arguments[0]
        let named = [busyboxSource.name, lxcSource.name, dockerSource.name]
        let others = imageSources.filter { !named.contains($0.name) }.compactMap(\.commands.first?.name)
        throw PlashError.failure("import \(name): only busybox is built in; from an image server: plash import-lxc \(name); "
            + "a registry: plash import-docker \(name); also " + others.joined(separator: ", "))
    }
    return BusyboxSource()
}

struct BusyboxSource: ImageSource {
    /// Known only by looking at the host's busybox, which the import does first.
    var cacheKey: String? { nil }
    func importImage(_ context: ImportContext) throws -> Store.Image { try importBusybox(store: context.store, log: context.log) }
}

public func importBusybox(store: Store, log: (String) -> Void) throws -> Store.Image {
    var info = stat()
    guard stat(busyboxBinary, &info) == 0 else {
        throw PlashError.system("import busybox", busyboxBinary).advising("install busybox-static")
    }
    // A new busybox on the host makes a new image; the same one is imported once.
    let key = CacheKey.of("import busybox", "\(info.st_dev) \(info.st_ino) \(info.st_size) \(info.st_mtim.tv_sec) \(info.st_mtim.tv_nsec)")
    return try store.makeOnce(key) { staging in
        log("--> import busybox from \(busyboxBinary)")
        do {
            let count = try makeBusyboxRoot(staging.data, listing: staging.path + "/applets")
            log("\(count) applets")
            log("--:")
            return try store.publish(staging, parentNode: store.rootNode, script: "import busybox", key: key)
        } catch {
            throw error.context("import busybox")
        }
    }
}

func makeBusyboxRoot(_ root: String, listing: String) throws -> Int {
    let directories: [(String, mode_t)] = [
        ("", 0o755), ("bin", 0o755), ("sbin", 0o755), ("usr", 0o755), ("usr/bin", 0o755), ("usr/sbin", 0o755),
        ("etc", 0o755), ("root", 0o700), ("home", 0o755), ("tmp", 0o1777), ("var", 0o755), ("var/tmp", 0o1777),
        ("proc", 0o555), ("sys", 0o555), ("dev", 0o755), ("run", 0o755), ("mnt", 0o755),
    ]
    for (dir, mode) in directories {
        try check(mkdir(root + "/" + dir, mode), "create", dir)
        try check(chmod(root + "/" + dir, mode), "chmod", dir)
    }
    try copyFile(busyboxBinary, to: root + "/bin/busybox", mode: 0o755)

    try runHelper([busyboxBinary, "--list-full"], streams: Streams(stdin: .null, stdout: .file(listing, write: true)),
                  context: "list applets")
    let applets = try String(contentsOfFile: listing, encoding: .utf8).split(separator: "\n").map(String.init)
    unlink(listing)
    for applet in applets where applet != "bin/busybox" && !applet.hasPrefix("/") && !applet.contains("..") {
        let path = root + "/" + applet
        try FileManager.default.createDirectory(atPath: splitLast(path).0, withIntermediateDirectories: true)
        if symlink("/bin/busybox", path) == -1 && errno != EEXIST { throw PlashError.system("symlink", applet) }
    }
    try writeText(root + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    try writeText(root + "/etc/group", "root:x:0:\nnogroup:x:65534:\n")
    return applets.count
}

func copyFile(_ source: String, to destination: String, mode: mode_t) throws {
    let input = try check(open(source, O_RDONLY | O_CLOEXEC), "open", source)
    defer { close(input) }
    let output = try check(open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode), "create", destination)
    defer { close(output) }
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = read(input, &buffer, buffer.count)
        if n < 0 { throw PlashError.system("read", source) }
        if n == 0 { break }
        try writeAll(output, Array(buffer[0..<n]), path: destination)
    }
    try check(fchmod(output, mode), "chmod", destination)
}
