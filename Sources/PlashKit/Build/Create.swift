#if canImport(Glibc)
import Glibc
#endif
import CPlashShims
import FoundationEssentials
import PlashExec
import PlashSystem

extension Builder {
    /// `plash create IMAGE CMD...`: CMD runs as a build step does, but with the caller's
    /// stdin and no cache; what it writes becomes a new image on IMAGE.
    public func create(on parent: Store.Image, command: [String]) throws -> Store.Image {
        let script = command.map(shellQuote).joined(separator: " ")
        if let tooDeep = StoreLayout.tooDeep(store.depth(of: parent) + 1) { throw PlashError.failure("create: " + tooDeep) }
        let staging = try store.makeStaging("build")
        do {
            try check(mkdir(staging.data, 0o755), "create", staging.data)
            log("--> " + script)
            let shim = try plashExec ?? plashExecPath()
            var plan = buildStepPlan(.stored("\(parent.id)"), persist: staging.data)
            plan.dieWithParent = true
            plan.command = command
            let environment = currentEnvironment().filter { !$0.hasPrefix("PLASH_EXPORT=") && !$0.hasPrefix("PLASH_DATA=") }
                + ["PLASH_DATA=" + store.path]
            let (end, failure) = try runPlashExec(shim, plan, environment: environment, streams: Streams(stdout: .descriptor(2)))
            if let failure { throw PlashError.failure("create failed: " + failure) }
            guard end.succeeded else { throw PlashError.failure("create failed: \(script) \(end.text)") }
            log("--:")
            return try store.publish(staging, parentNode: parent.node, script: script, key: nil)
        } catch {
            try? removeTree(staging.path)
            throw error
        }
    }
}

/// `plash add-layer PARENT DIR`: DIR becomes a new image on PARENT (0: on the empty
/// root). DIR is renamed into the store, as the original did; from another file system
/// it is copied and stays.
public func addLayer(_ dir: String, parent: String, store: Store) throws -> Store.Image {
    let parentNode = parent == "0" ? store.rootNode : try store.image(parent).node
    if let tooDeep = StoreLayout.tooDeep(store.layout.depth(ofNode: parentNode) + 1) {
        throw PlashError.failure("add-layer \(dir): " + tooDeep)
    }
    try refuseStorePath(dir, store: store, what: "add-layer")
    var info = stat()
    guard lstat(dir, &info) == 0 else { throw PlashError.system("add-layer", dir) }
    // A symlink would be renamed as it is: the image's files would be the host's
    // directory it points to, changing with it.
    guard info.st_mode & S_IFMT == S_IFDIR else { throw PlashError.failure("add-layer \(dir): not a directory") }
    let staging = try store.makeStaging("import")
    do {
        if rename(dir, staging.data) == -1 {
            guard errno == EXDEV else { throw PlashError.system("add-layer: rename", dir) }
            try check(mkdir(staging.data, 0o755), "create", staging.data)
            try runHelper(["cp", "-a", "--", dir + "/.", staging.data], context: "add-layer \(dir)")
        }
        return try store.publish(staging, parentNode: parentNode, script: "plash add-layer", key: nil)
    } catch {
        try? removeTree(staging.path)
        throw error
    }
}

/// Runs `body` with the image's files mounted read-only at a fresh directory, in a mount
/// namespace of this process's own: the mount vanishes with it however it ends.
public func withMountedImage<T>(_ image: Store.Image, store: Store, _ body: (String) throws -> T) throws -> T {
    let staging = try store.makeStaging("mount")
    defer { try? removeTree(staging.path) }
    let root = staging.path + "/root"
    try check(mkdir(root, 0o755), "create", root)
    try PlashSystem.unshare(CLONE_NEWNS)
    try PlashSystem.mount("none", on: "/", flags: UInt(MS_REC | MS_PRIVATE), what: "make / private")
    try mountImage(image, store: store, on: root)
    defer { umount2(root, Int32(MNT_DETACH)) }
    return try body(root)
}

/// `plash copy IMAGE DIR`: the image's merged files into DIR, which must be empty or
/// not exist yet (nothing of the caller's is overwritten).
public func copyImage(_ image: Store.Image, to dir: String, store: Store) throws {
    try refuseStorePath(dir, store: store, what: "copy")
    if let entries = directoryEntries(dir) {
        guard entries.isEmpty else { throw PlashError.failure("copy: \(dir) is not empty") }
    } else {
        try check(mkdir(dir, 0o755), "copy: create", dir)
    }
    try withMountedImage(image, store: store) { root in
        try runHelper(["cp", "-a", "--", root + "/.", dir], context: "copy \(image.id)")
    }
}

/// add-layer, copy and the exports refuse a DIR or FILE in the store or around it:
/// moving an image's files away, or writing into them, changes images (and clean
/// removes what lies in tmp/). It need not exist yet: then its parent is resolved.
public func refuseStorePath(_ dir: String, store: Store, what: String) throws {
    guard let storePath = canonicalPath(store.path) else { return }
    let (parent, name) = splitLast(dir)
    guard let full = canonicalPath(dir) ?? canonicalPath(parent).map({ ($0 == "/" ? "" : $0) + "/" + name }) else { return }
    if isPath(full, within: storePath) {
        throw PlashError.failure("\(what) \(dir): lies in the store \(storePath), whose files only plash changes")
    }
    if isPath(storePath, within: full) {
        throw PlashError.failure("\(what) \(dir): holds the store \(storePath), whose files only plash changes")
    }
}
