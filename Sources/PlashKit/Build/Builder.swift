#if canImport(Glibc)
import Glibc
#endif
import CPlashShims
import FoundationEssentials
import PlashExec
import PlashSystem

/// Builds images: resolves the image to start from, then builds each layer unless the
/// cache already holds it. Progress goes to stderr; nothing here prints to stdout.
public struct Builder {
    public let store: Store
    /// The plash-exec that runs build steps; nil: the one beside plash, else on PATH.
    public var plashExec: String? = nil
    /// One line of progress for stderr.
    public var log: (String) -> Void = { printLine(toStandardError: $0) }

    public init(store: Store) { self.store = store }

    public func build(_ plan: BuildPlan) throws -> Store.Image {
        guard let source = plan.source else {
            throw PlashError.usage("no image to start from: give --from IMAGE", usage: buildUsage)
        }
        // plash-exec is looked for before anything is imported or built.
        var builder = self
        if !plan.nonEmptyLayers.isEmpty { builder.plashExec = try plashExec ?? plashExecPath() }
        var image = try builder.resolve(source, refresh: plan.refresh)
        if let tooDeep = StoreLayout.tooDeep(store.depth(of: image) + plan.nonEmptyLayers.count) {
            throw PlashError.failure("build: " + tooDeep)
        }
        for layer in plan.nonEmptyLayers {
            image = try builder.build(layer, on: image)
        }
        return image
    }

    /// --from: an id, else a name, else a built-in source; or a download.
    public func resolve(_ source: BuildPlan.Source, refresh: Bool = false) throws -> Store.Image {
        switch source {
        case .id(let id):
            guard id.allSatisfy(\.isASCIIDigit), let image = store.lookup(id) else { throw PlashError.failure("no image \(id)") }
            return image
        case .name(let name):
            guard !name.allSatisfy(\.isASCIIDigit), let image = store.lookup(name) else { throw PlashError.failure("no image \(name)") }
            return image
        case .any(let name):
            if let image = store.lookup(name) { return image }
            if name.allSatisfy(\.isASCIIDigit) { throw PlashError.failure("no image \(name)") }
            if name == "busybox" { return try resolve(.imported(source: busyboxSource.name, arguments: [name]), refresh: refresh) }
            if isFile(name) {
                // `plash build -f Plashfile`, docker's habit: -f is --from here, and the file
                // is no name to look up on the image server.
                throw PlashError.usage("--from \(name): no image \(name), but a file; to build a Plashfile: "
                    + "plash build --eval-file \(shellQuote(name)) (the image server's: --from-lxc \(shellQuote(name)))",
                    usage: buildUsage)
            }
            guard isLXCReference(name) else { throw PlashError.failure("no image \(name)") }
            return try resolve(.imported(source: lxcSource.name, arguments: [name]), refresh: refresh)
        case .imported(let name, let arguments):
            guard let kind = imageSource(named: name) else { throw PlashError.failure("no image source \(name)") }
            let source = try kind.parse(arguments, SourceCaller(name: kind.macro ?? name, usage: buildUsage))
            let refresh = refresh && kind.commands.contains { $0.refresh != .never }
            // Imported before: no child for the import (an ordinary user's) is needed.
            if !refresh, let key = source.cacheKey, let hit = store.cached(key) { return hit }
            return try importing(source, privilege: kind.privilege, refresh: refresh)
        case .build(let plan):
            return try build(plan)
        }
    }

    /// Imports from `source` where its kind says the import runs (ImportPrivilege).
    func importing(_ source: any ImageSource, privilege: ImportPrivilege, refresh: Bool) throws -> Store.Image {
        let inUserNamespace = geteuid() != 0
        let log = self.log
        let context = { (enter: @escaping () throws -> Void) in
            ImportContext(store: store, refresh: refresh, inUserNamespace: inUserNamespace, enterUserNamespace: enter, log: log)
        }
        switch privilege {
        case .user:
            return try source.importImage(context({}))
        case .rootOfUserNamespace:
            return try importAsRoot(store: store) { _ in try source.importImage(context({})) }
        case .rootAfterStart:
            return try importAsRootOnceAsked(store: store) { enter in
                try withoutActuallyEscaping(enter) { try source.importImage(context($0)) }
            }
        }
    }

    /// Runs an import of image layers as root: at once for root; for an ordinary user in a
    /// child process that is root of the user's own user namespace, as `plash import-oci`
    /// runs whole, so the layers' owners land as in the archive (subordinate ids) and chown
    /// works. The build itself stays outside: its steps and `plash run` start from here.
    /// The child reports the image's id, or its error as one line, through a pipe.
    func importAsRoot(store: Store, _ body: (_ inUserNamespace: Bool) throws -> Store.Image) throws -> Store.Image {
        let inUserNamespace = geteuid() != 0
        return try importAsRootOnceAsked(store: store) { enter in
            try enter()
            return try body(inUserNamespace)
        }
    }

    /// The same, for an import that starts a program as the user first: the child enters
    /// the namespace when `body` calls `enter` (for root, `enter` does nothing).
    func importAsRootOnceAsked(store: Store, _ body: (_ enter: () throws -> Void) throws -> Store.Image)
        throws -> Store.Image {
        let uid = geteuid(), gid = getegid()
        guard uid != 0 else { return try body({}) }
        let answer = try inChildProcess {
            String(try body({ try enterUserNamespace(CLONE_NEWUSER, uid: uid, gid: gid) }).id)
        }
        guard let id = Int(answer), let image = store.lookup(id: id) else {
            throw PlashError.failure("the import as root of the user namespace ended without an image")
        }
        return image
    }

    /// The layer's cache key: its parent, its script, the names of the variables it is
    /// given, the paths of what it sees of the host (the working directory it starts in,
    /// $HOME: by default this process's), the contents of the --hash-path files, and its
    /// config macros.
    public func cacheKey(_ layer: LayerSpec, parent: Int, directory: String? = currentDirectory(),
                         home: String? = environment("HOME")) throws -> String {
        var key = CacheKey("layer")
        key.add("parent \(parent)")
        key.add("cwd \(directory ?? "")")
        key.add("home \(home ?? "")")
        for name in layer.environment { key.add("env \(name)") }
        for step in layer.steps { key.add("step \(step.utf8.count) \(step)") }
        for path in layer.hashPaths {
            key.add("path \(path)")
            try key.update { try hashTree(path, into: &$0) }
        }
        for change in layer.config {
            key.add("config \(change.macro) \(change.values.count)")
            for value in change.values { key.add("\(value.utf8.count) \(value)") }
        }
        if layer.invalidate { key.add("random \(UInt64.random(in: 0...UInt64.max))") }
        return key.hex()
    }

    public func build(_ layer: LayerSpec, on parent: Store.Image) throws -> Store.Image {
        let key = try cacheKey(layer, parent: parent.id)
        return try store.makeOnce(key, staging: "build") { staging in
            // A layer without steps (--invalidate-layer alone) is an empty layer: plash-exec
            // never ran to create its directory.
            try check(mkdir(staging.data, 0o755), "create", staging.data)
            for step in layer.steps { try run(step, layer: layer, on: parent, staging: staging) }
            if !layer.config.isEmpty {
                try applying(layer.config, to: try ImageConfig.read(node: parent.node) ?? .plashDefaults).write(into: staging.path)
            }
            return try store.publish(staging, parentNode: parent.node, script: layer.script, key: key)
        }
    }

    /// One step in a container of the parent image whose writes land in the staging
    /// layer. Its stdout goes to our stderr: plash's stdout carries only the id.
    func run(_ step: String, layer: LayerSpec, on parent: Store.Image, staging: Staging) throws {
        let shim = try plashExec ?? plashExecPath()
        log("--> " + excerpt(step))
        // A step dies with its plash, and with it everything it started: --die-with-parent
        // ends only the step's own process, the end of a PID namespace ends all of it. So
        // a killed build leaves nothing running that still writes into its staging.
        var plan = buildStepPlan(.stored("\(parent.id)"), persist: staging.data)
        plan.dieWithParent = true
        plan.pidNamespace = true
        // A step's stdin is /dev/null: nobody could answer a debconf question (--apt).
        // Outside the cache key; --import-env DEBIAN_FRONTEND, later, overrides it.
        plan.environment = ["DEBIAN_FRONTEND=noninteractive"] + layer.environment
        // The script reaches the shell as a file in memory, not as an argument: execve
        // refuses an argument over 128 KiB (E2BIG), and a script may be of any size.
        // Sourced, so that $0 and `set -e` are as with `sh -ec SCRIPT`.
        let script = try memoryFile("build step", Array(step.utf8))
        defer { close(script) }
        try check(fcntl(script, F_SETFD, 0), "pass on", "the build step's script")
        plan.command = ["/bin/sh", "-ec", ". /proc/self/fd/\(script)"]
        // PLASH_EXPORT is for `plash run`; a build gets only what --env names. A step is
        // not the service its manager started: it must not report ready or take its sockets.
        let dropped = ["PLASH_EXPORT", "PLASH_DATA"] + serviceManagerVariables
        let environment = currentEnvironment().filter { entry in !dropped.contains { entry.hasPrefix($0 + "=") } }
            + ["PLASH_DATA=" + store.path]
        let (end, failure) = try runPlashExec(shim, plan, environment: environment,
                                              streams: Streams(stdin: .null, stdout: .descriptor(2)))
        if let failure { throw PlashError.failure("build failed: " + failure) }
        guard end.succeeded else {
            let firstLine = step.split(separator: "\n").first.map(String.init) ?? step
            let shown = excerpt(firstLine) + (step.contains("\n") ? " ..." : "")
            throw PlashError.failure("build failed: \(shown) \(end.text)")
        }
        log("--:")
    }
}

/// Runs plash-exec (`shim`) on `plan` and waits for it. Its own failure (it could not
/// set up the container or start the program) comes back as its line, read from
/// --error-fd rather than printed, so that plash says it once, with its context;
/// otherwise the end is the program's own, whatever its status (126 and 127 too).
func runPlashExec(_ shim: String, _ plan: ExecPlan, environment: [String], streams: Streams) throws
    -> (end: Termination, failure: String?) {
    var ends: [Int32] = [-1, -1]
    try makePipe(&ends, for: "plash-exec")
    defer { close(ends[0]) }
    // Inherited by plash-exec alone: plash starts nothing else meanwhile, and plash-exec
    // marks it close-on-exec before the program starts.
    let pid: pid_t
    do {
        try check(fcntl(ends[1], F_SETFD, 0), "pass on", "plash-exec's error descriptor")
        var plan = plan
        plan.errorDescriptor = ends[1]
        pid = try spawn([shim] + execArguments(plan), environment: environment, streams: streams)
    } catch {
        close(ends[1])
        throw error
    }
    close(ends[1])
    let end = try waitFor(pid, "plash-exec")
    // Written before plash-exec ended; whatever else still holds the pipe, do not wait.
    _ = fcntl(ends[0], F_SETFL, O_NONBLOCK)
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = read(ends[0], &buffer, buffer.count)
    guard count > 0 else { return (end, nil) }
    var line = String(decoding: buffer[..<count], as: UTF8.self)
    if line.hasSuffix("\n") { line.removeLast() }
    if line.hasPrefix("plash-exec: ") { line.removeFirst("plash-exec: ".count) }
    return (end, line)
}

/// A script as a progress or error line shows it: whole up to 1 KiB, else its start and
/// its size (a generated script of 20 MB is no line to print). A script's last newline
/// (one read by --run-stdin ends in one) would print a blank line after it.
func excerpt(_ script: String, limit: Int = 1024) -> String {
    var script = Substring(script)
    while script.hasSuffix("\n") { script = script.dropLast() }
    guard script.utf8.count > limit else { return String(script) }
    var shown = String.UnicodeScalarView()
    var size = 0
    for scalar in script.unicodeScalars {
        size += scalar.utf8.count
        if size > limit { break }
        shown.append(scalar)
    }
    return "\(String(shown)) ... (\(script.utf8.count) bytes)"
}

/// A build step (and `plash create`, `plash runb`) in `image`, its writes kept in
/// `persist`. It is given of the host /home's entries, $HOME and the working directory
/// read-only, each where the image has nothing at its path; not /tmp; a /dev of its own
/// (the host's /dev/shm is writable for everyone). So its writes land in the layer or
/// fail, and never change the host. The image's config applies (Env, User, WorkingDir),
/// as to a Dockerfile's RUN, but not its Entrypoint: the step is the program.
public func buildStepPlan(_ image: ExecPlan.Image, persist: String) -> ExecPlan {
    var plan = ExecPlan(image: image)
    plan.persist = persist
    plan.shareTmp = false
    plan.readOnlyShares = true
    plan.minimalDev = true
    plan.entrypoint = []
    return plan
}

/// Feeds a file, or every file below a directory in name order, to the hash: names (as
/// bytes), types, modes and contents, so any change gives a new key. A symlink counts
/// as its text and as what it leads to, since the build reads through it; a link back
/// to a directory being walked counts by its text alone. A FIFO or a device counts by
/// its mode: it is never opened.
func hashTree(_ path: String, into hash: inout SHA256) throws {
    var walking: [(dev_t, ino_t)] = []
    try hashEntry(AT_FDCWD, Array(path.utf8), shown: path, into: &hash, walking: &walking)
}

/// The entry `name` of the directory `parent`; `walking` the directories above it.
func hashEntry(_ parent: Int32, _ name: [UInt8], shown path: String, into hash: inout SHA256,
               walking: inout [(dev_t, ino_t)]) throws {
    let cName = TarExtractor.cString(name)
    var info = stat()
    guard fstatat(parent, cName, &info, AT_SYMLINK_NOFOLLOW) == 0 else { throw PlashError.system("--hash-path", path) }
    if info.st_mode & S_IFMT == S_IFLNK {
        var target = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = target.withUnsafeMutableBytes {
            readlinkat(parent, cName, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count)
        }
        guard count >= 0 else { throw PlashError.system("--hash-path", path) }
        hash.update("link ")
        hash.update(target[0..<count])
        hash.update("\0")
        // A dangling link counts by its text.
        guard fstatat(parent, cName, &info, 0) == 0 else { return }
    }
    let type = info.st_mode & S_IFMT
    hash.update("mode \(info.st_mode)\0")
    if type == S_IFDIR {
        if walking.contains(where: { $0 == (info.st_dev, info.st_ino) }) { return }
        let fd = try check(openat(parent, cName, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "--hash-path", path)
        defer { close(fd) }
        walking.append((info.st_dev, info.st_ino))
        defer { walking.removeLast() }
        for child in try directoryNames(fd, path: path) {
            hash.update("entry ")
            hash.update(child)
            hash.update("\0")
            try hashEntry(fd, child, shown: path + "/" + String(decoding: child, as: UTF8.self), into: &hash, walking: &walking)
        }
    } else if type == S_IFREG {
        // Not waited on should it have become a FIFO since: then it reads as empty.
        let fd = try check(openat(parent, cName, O_RDONLY | O_NONBLOCK | O_CLOEXEC), "--hash-path", path)
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        hash.update("size \(info.st_size)\0")
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw PlashError.system("--hash-path", path)
            }
            if n == 0 { break }
            hash.update(buffer[0..<n])
        }
    }
}

