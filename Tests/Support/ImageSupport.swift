import Foundation

// Images, layouts and image servers that more than one suite builds on.

/// This machine's architecture as image servers name it.
public let imageArchitecture: String = {
    var names = utsname()
    uname(&names)
    let machine = withUnsafeBytes(of: &names.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    return ["x86_64": "amd64", "aarch64": "arm64"][machine] ?? machine
}()

/// The Alpine root of ../shared/fixtures (xz, 1378 entries: setuid busybox, symlinks,
/// hard links), when this checkout sits beside it.
public let alpineRoot = URL(fileURLWithPath: repositoryDirectory).deletingLastPathComponent()
    .appendingPathComponent("shared/fixtures/alpine-3.23-rootfs.tar.xz").path

/// busybox, a layer that adds a file and a directory, a layer that deletes the file
/// and replaces the directory: the deletions must survive as whiteouts.
public func imageWithDeletions(_ store: TestStore) throws -> String {
    _ = try store.id(["import", "busybox"])
    return try store.id(["build", "-f", "1", "--run", "mkdir -p /d/sub && echo a > /d/sub/f && echo x > /gone",
                         "--layer", "--run", "rm /gone && rm -rf /d && mkdir /d && echo new > /d/n"])
}

/// Every path of a root below / (one file system), with type, mode, owner, size of files,
/// link target and contents' checksum, as the root's own busybox sees it. What
/// plash run binds from the host (the test's $HOME among them) is left out.
public let rootListingScript = """
    find / -xdev | sort | grep -Ev '^/(proc|dev|sys|tmp|home|root|run)(/|$)|^/etc/(resolv.conf|hosts)$|^/var/tmp/plash-tests' |
    while read -r p; do
        s=$(stat -c '%A %u %g %N' "$p"); [ -f "$p" ] && [ ! -L "$p" ] && s="$s $(stat -c %s "$p") $(md5sum < "$p")"; echo "$p $s"
    done
    """

/// What `rootListingScript` prints in image `id`.
public func rootListing(_ store: TestStore, _ id: String) throws -> String {
    let result = try store.plash(["run", id, "sh", "-c", rootListingScript], directory: "/")
    guard result.status == 0 else { throw StoreTestError("plash run: \(result)") }
    return result.stdout
}

/// The image with deletions (busybox and two layers), exported as layout DIR/layout, tag t.
public func exportedLayout(_ store: TestStore) throws -> (id: String, dir: String) {
    let id = try imageWithDeletions(store)
    let dir = makeDirectory("oci")
    let exported = try store.plash(["export-oci", id, dir + "/layout", "--tag", "t"])
    guard exported.status == 0 else { throw StoreTestError("export-oci: \(exported)") }
    return (id, dir)
}

/// A layout plash did not write: umoci's tar and Go's gzip of busybox and /bin/sh, two layers.
public func umociLayout(_ dir: String) throws -> String {
    try require(.umoci)
    let made = try shell("""
        set -e; cd '\(dir)'; umoci init --layout src && umoci new --image src:t
        umoci insert --image src:t /bin/busybox /bin/busybox && ln -s busybox sh && umoci insert --image src:t sh /bin/sh
        """)
    guard made.status == 0 else { throw StoreTestError("umoci: \(made)") }
    return dir + "/src"
}

/// The JSON object in a file.
public func readJSONObject(_ path: String) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
    guard let dictionary = object as? [String: Any] else { throw StoreTestError("\(path): not a JSON object") }
    return dictionary
}

/// The layer digests and diff_ids of the image `tag` names in a layout.
public func layoutLayers(_ layout: String, _ tag: String) throws -> (digests: [String], diffIDs: [String]) {
    let blob = { (digest: String) in layout + "/blobs/sha256/" + digest.dropFirst("sha256:".count) }
    let manifests = try readJSONObject(layout + "/index.json")["manifests"] as? [[String: Any]] ?? []
    guard let entry = manifests.first(where: { ($0["annotations"] as? [String: String])?["org.opencontainers.image.ref.name"] == tag }),
          let digest = entry["digest"] as? String else { throw StoreTestError("\(layout): no image \(tag)") }
    let manifest = try readJSONObject(blob(digest))
    let digests = (manifest["layers"] as? [[String: Any]] ?? []).compactMap { $0["digest"] as? String }
    let config = try readJSONObject(blob((manifest["config"] as? [String: Any])?["digest"] as? String ?? ""))
    let diffIDs = (config["rootfs"] as? [String: Any])?["diff_ids"] as? [String] ?? []
    return (digests, diffIDs)
}

/// A server with tiny:1.0 and tiny:1.10 (the busybox root, with /release saying
/// which), tiny:2.0 only for another architecture, gone:1.0 whose rootfs is missing,
/// corrupt:1.0 whose rootfs is not what its SHA256SUMS says, unsummed:1.0 without a
/// SHA256SUMS, and alpine:3.23 (the real Alpine root of ../shared/fixtures). Every
/// other image directory has a SHA256SUMS as images.linuxcontainers.org's do
/// (sha256sum's output, a line a file).
public func lxcImageServer() throws -> WebServer {
    try require(.xz)
    let root = makeDirectory("lxc")
    var index = ""
    enum Sums { case right, wrong, none }
    func add(_ distro: String, _ release: String, _ arch: String, _ date: String, sums: Sums = .right,
             rootfs: ((String) throws -> Void)?) throws {
        let path = "/images/\(distro)/\(release)/\(arch)/default/\(date)/"
        try FileManager.default.createDirectory(atPath: root + path, withIntermediateDirectories: true)
        try rootfs?(root + path + "rootfs.tar.xz")
        if sums != .none {
            let made = try run("/bin/sh", ["-c", """
                cd "$0" && echo meta > meta.tar.xz && { [ -e rootfs.tar.xz ] || echo missing > rootfs.tar.xz; } &&
                sha256sum meta.tar.xz rootfs.tar.xz > SHA256SUMS && { [ -s rootfs.tar.xz ] && [ "$(cat rootfs.tar.xz)" != missing ] || rm rootfs.tar.xz; } &&
                if [ "$1" = wrong ]; then printf X >> rootfs.tar.xz; fi
                """, root + path, sums == .wrong ? "wrong" : "right"])
            guard made.status == 0 else { throw SetupError("SHA256SUMS: \(made)") }
        }
        index += "\(distro);\(release);\(arch);default;\(date);\(path)\n"
    }
    func tiny(_ release: String) -> (String) throws -> Void {
        { file in
            let dir = makeDirectory("tiny")
            let made = try run("/bin/sh", ["-c", "cp -a \"$0\"/. \"$1\" && echo \(release) > \"$1\"/release && tar -cJf \"$2\" -C \"$1\" .",
                                           try busyboxRoot, dir, file])
            guard made.status == 0 else { throw SetupError("tiny root: \(made)") }
        }
    }
    try add("tiny", "1.0", imageArchitecture, "20260101_00:00", rootfs: tiny("1.0"))
    try add("tiny", "1.10", imageArchitecture, "20260101_00:00", rootfs: tiny("1.10-old"))
    try add("tiny", "1.10", imageArchitecture, "20260102_00:00", rootfs: tiny("1.10"))
    try add("tiny", "1.9", imageArchitecture, "20260103_00:00", rootfs: tiny("1.9"))
    try add("tiny", "2.0", imageArchitecture == "amd64" ? "arm64" : "amd64", "20260101_00:00", rootfs: tiny("2.0"))
    try add("gone", "1.0", imageArchitecture, "20260101_00:00", rootfs: nil)
    try add("corrupt", "1.0", imageArchitecture, "20260101_00:00", sums: .wrong, rootfs: tiny("corrupt"))
    try add("unsummed", "1.0", imageArchitecture, "20260101_00:00", sums: .none, rootfs: tiny("unsummed"))
    let alpine = alpineRoot
    if FileManager.default.fileExists(atPath: alpine) {
        try add("alpine", "3.23", imageArchitecture, "20260101_00:00") { try FileManager.default.createSymbolicLink(atPath: $0, withDestinationPath: alpine) }
    }
    try FileManager.default.createDirectory(atPath: root + "/meta/1.0", withIntermediateDirectories: true)
    try index.write(toFile: root + "/meta/1.0/index-system", atomically: false, encoding: .utf8)
    return try WebServer(root: root)
}

/// Every path below `dir`, one line each: `PATH\tTYPE MODE UID:GID ...`.
private let treeWalker = """
    import hashlib, os, stat, sys
    def describe(path, name, out):
        st = os.lstat(path)
        kind = stat.S_IFMT(st.st_mode)
        fields = ['%o' % kind, '%04o' % stat.S_IMODE(st.st_mode), '%d:%d' % (st.st_uid, st.st_gid)]
        if stat.S_ISREG(kind):
            digest = hashlib.sha256()
            with open(path, 'rb') as f:
                for chunk in iter(lambda: f.read(1 << 20), b''):
                    digest.update(chunk)
            fields += ['size=%d' % st.st_size, 'links=%d' % st.st_nlink, digest.hexdigest()]
        elif stat.S_ISLNK(kind):
            fields.append('-> ' + os.readlink(path))
        elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
            fields.append('dev=%d,%d' % (os.major(st.st_rdev), os.minor(st.st_rdev)))
        out.append(name + '\\t' + ' '.join(fields))
        if stat.S_ISDIR(kind):
            for entry in sorted(os.listdir(path)):
                describe(os.path.join(path, entry), name + '/' + entry, out)
    out = []
    describe(sys.argv[1], '.', out)
    print('\\n'.join(out))
    """

/// Each path below `dir` (`.` first) and its description, as `treeWalker` prints it.
public func treeEntries(_ dir: String, deadline: Double = defaultDeadline) throws -> [String: String] {
    let walked = try run("/usr/bin/python3", ["-c", treeWalker, dir], deadline: deadline)
    guard walked.status == 0 else { throw StoreTestError("walking \(dir): \(walked)") }
    var entries: [String: String] = [:]
    for line in walked.stdout.split(separator: "\n") {
        let parts = line.split(separator: "\t", maxSplits: 1).map(String.init)
        entries[parts[0]] = parts.count == 2 ? parts[1] : ""
    }
    return entries
}

/// The image NAME:TAG of `registry` pulled by plash into `store` and mounted, and
/// unpacked by skopeo and umoci: their differences, one line per path. Each step within
/// `deadline` seconds (a Debian root takes minutes on a loaded machine).
public func umociDifferences(_ registry: RegistryServer, _ reference: String, store: TestStore = TestStore(),
                             deadline: Double = defaultDeadline) throws -> [String] {
    try require(.skopeo, .umoci, .python3)
    let pulled = try store.plash(["import-docker", "\(registry.host)/\(reference)"], deadline: deadline)
    guard pulled.status == 0 else { throw StoreTestError("plash import-docker: \(pulled)") }
    let mountPoint = makeDirectory("plash-tree")
    let mounted = try store.plash(["mount", pulled.stdout.trimmingCharacters(in: .newlines), mountPoint])
    guard mounted.status == 0 else { throw StoreTestError("plash mount: \(mounted)") }
    defer { _ = try? store.plash(["umount", mountPoint]) }

    let dir = makeDirectory("umoci")
    let copied = try run("/usr/bin/skopeo", ["copy", "-q", "--src-tls-verify=false", "docker://\(registry.host)/\(reference)",
                                             "oci:\(dir)/layout:t"], deadline: deadline)
    guard copied.status == 0 else { throw StoreTestError("skopeo copy: \(copied)") }
    let unpacked = try run("/usr/bin/umoci", ["unpack", "--image", dir + "/layout:t", dir + "/bundle"], deadline: deadline)
    guard unpacked.status == 0 else { throw StoreTestError("umoci unpack: \(unpacked)") }

    let plashTree = try treeEntries(mountPoint, deadline: deadline), umociTree = try treeEntries(dir + "/bundle/rootfs", deadline: deadline)
    return Set(plashTree.keys).union(umociTree.keys).sorted().compactMap { path in
        let mine = plashTree[path], theirs = umociTree[path]
        return mine == theirs ? nil : "\(path): plash \(mine ?? "missing"), umoci \(theirs ?? "missing")"
    }
}
