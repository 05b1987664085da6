#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PlashSystem

public let debootstrapSource = ImageSourceKind(
    name: "debootstrap", synopsis: "SUITE [MIRROR]", operands: [.text, .optional(.text)], macro: "--from-debootstrap",
    macroHelp: "start from a Debian or Ubuntu root that mmdebstrap builds here (minbase), once per suite and mirror",
    commands: [.init("import-debootstrap", help: "Build a Debian or Ubuntu root with mmdebstrap (minbase; once per SUITE and MIRROR) and print its id.",
                     refresh: .optional, refreshHelp: "build it again, though an earlier import of SUITE and MIRROR exists")],
    // mmdebstrap starts with the user's credentials (its unshare mode needs them and maps
    // the subordinate ids itself); the namespace is entered after, for the extraction.
    privilege: .rootAfterStart,
    hint: { "(mmdebstrap \($0.joined(separator: " ")))" }
) { arguments, caller in
    guard arguments.count <= 2, isDebootstrapSuite(arguments[0]) else {
        throw PlashError.usage("\(caller.name): give a SUITE and at most a MIRROR, not \(arguments.joined(separator: " "))",
                               usage: caller.usage)
    }
    return DebootstrapSource(suite: arguments[0], mirror: arguments.count == 2 ? arguments[1] : nil)
}

struct DebootstrapSource: ImageSource {
    let suite: String
    let mirror: String?
    var cacheKey: String? { debootstrapKey(suite, mirror: mirror) }
    func importImage(_ context: ImportContext) throws -> Store.Image {
        try importDebootstrap(suite, mirror: mirror, refresh: context.refresh, store: context.store,
                              enterUserNamespace: context.enterUserNamespace, log: context.log)
    }
}

/// A Debian suite name as mmdebstrap takes it (`bookworm`, `stable`, `noble`): no
/// option, no path.
public func isDebootstrapSuite(_ suite: String) -> Bool {
    !suite.isEmpty && !suite.hasPrefix("-") && !suite.hasPrefix(".")
        && suite.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
}

/// The cache key of a suite and mirror (nil: mmdebstrap's default mirror).
public func debootstrapKey(_ suite: String, mirror: String?) -> String {
    CacheKey.of("import-debootstrap", suite, mirror ?? "")
}

/// `plash import-debootstrap SUITE [MIRROR]` and `--from-debootstrap SUITE [MIRROR]`: a
/// Debian or Ubuntu root built here by mmdebstrap (variant minbase), its tar streamed
/// into plash's extractor. Built once per suite and mirror: later imports run no
/// mmdebstrap and touch no network, unless `refresh` asks to build it again.
///
/// `enterUserNamespace` runs once mmdebstrap has started and before anything is
/// extracted: an ordinary user's plash becomes root of its user namespace there, where
/// the tar's owners land as they are, while mmdebstrap itself keeps the user's
/// credentials, which its unshare mode needs.
public func importDebootstrap(_ suite: String, mirror: String?, refresh: Bool = false, store: Store,
                              enterUserNamespace: () throws -> Void = {}, log: (String) -> Void) throws -> Store.Image {
    let described = "import-debootstrap \(suite)" + (mirror.map { " " + $0 } ?? "")
    let key = debootstrapKey(suite, mirror: mirror)
    do {
        return try store.makeOnce(key, refresh: refresh) { staging in
            guard let mmdebstrap = programOnPath("mmdebstrap") else {
                throw PlashError.failure("mmdebstrap not found on PATH").advising("apt-get install mmdebstrap")
            }
            // An ordinary user's mmdebstrap (its unshare mode) maps the user's subordinate
            // ids; without them it ends in "use --mode", which is no advice for plash's user.
            if geteuid() != 0 {
                let uid = geteuid(), user = userName(uid) ?? "\(uid)"
                let (uids, gids) = subordinateRanges(uid: uid, gid: getegid())
                if uids == nil || gids == nil {
                    throw PlashError.failure("no subordinate ids for \(user) in /etc/subuid and /etc/subgid: mmdebstrap needs them to build as an ordinary user")
                        .advising("as root: \(addSubordinateIDs(user))")
                }
            }
            log("--> \(described)")
            try runMmdebstrap(mmdebstrap, suite: suite, mirror: mirror, staging: staging,
                              enterUserNamespace: enterUserNamespace, log: log)
            return try store.publish(staging, parentNode: store.rootNode, script: described, key: key)
        }
    } catch {
        throw error.context(described)
    }
}

/// mmdebstrap writing its tar into a pipe that the extractor reads: no tar file on disk.
/// Its messages go to a terminal as they are (progress bars included); otherwise into a
/// file, of which a failure reports the one line that says why.
func runMmdebstrap(_ mmdebstrap: String, suite: String, mirror: String?, staging: Staging,
                   enterUserNamespace: () throws -> Void, log: (String) -> Void) throws {
    var messages: Int32 = -1
    if isatty(2) == 0 {
        let path = staging.path + "/mmdebstrap.log"
        messages = try check(open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600), "create", path)
        // Unlinked at once: the staging directory becomes the image's node.
        unlink(path)
    }
    defer { if messages >= 0 { close(messages) } }
    var ends: [Int32] = [-1, -1]
    try makePipe(&ends, for: "mmdebstrap")
    var input = ends[0]
    defer { if input >= 0 { close(input) } }

    // `--` ends its options: a MIRROR starting with '-' is no option of mmdebstrap's.
    let arguments = [mmdebstrap, "--variant=minbase", "--", suite, "-"] + (mirror.map { [$0] } ?? [])
    let streams = Streams(stdin: .null, stdout: .descriptor(ends[1]), stderr: messages >= 0 ? .descriptor(messages) : .inherit)
    // A process group of its own: when writing its tar fails, mmdebstrap sends SIGHUP to
    // its whole group, which would otherwise be plash's, with plash in it and whatever
    // else the caller's shell or test runner started beside it.
    let pid: pid_t
    do { pid = try spawn(arguments, streams: streams, ownProcessGroup: true) } catch { close(ends[1]); throw error }
    close(ends[1])

    do {
        try enterUserNamespace()
        try extractArchive(input, into: staging, log: log)
        // The tar ends in zero blocks that the extractor need not read: mmdebstrap must
        // write them all, or it fails on a closed pipe.
        try drain(input)
    } catch {
        // Output that ended early is mmdebstrap's failure, and its message says why.
        // Otherwise it still runs: TERM stops it after its current step, maybe a minute
        // later, when it unmounts and removes what it made (as root it mounts on the
        // host: never KILL it). That is not waited for.
        let ended = writerClosed(input)
        close(input)
        input = -1
        guard ended else {
            kill(pid, SIGTERM)
            throw error
        }
        if let end = try? waitFor(pid, "mmdebstrap"), !end.succeeded { throw mmdebstrapFailure(end, messages: messages) }
        throw error
    }
    let end = try waitFor(pid, "mmdebstrap")
    guard end.succeeded else { throw mmdebstrapFailure(end, messages: messages) }
}

func mmdebstrapFailure(_ end: Termination, messages: Int32) -> PlashError {
    PlashError.failure((messages >= 0 ? mmdebstrapError(messages) : nil) ?? "mmdebstrap \(end.text)")
}

/// Whether every writer of the pipe `fd` has closed it.
func writerClosed(_ fd: Int32) -> Bool {
    var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    return poll(&entry, 1, 0) == 1 && entry.revents & Int16(POLLHUP) != 0
}

/// Reads `fd` to its end.
func drain(_ fd: Int32) throws {
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = read(fd, &buffer, buffer.count)
        if count == 0 { return }
        if count < 0 && errno != EINTR { throw PlashError.system("read", "mmdebstrap's output") }
    }
}

/// The line of mmdebstrap's messages (in the file `fd`) that says why it failed: its last
/// error (`E: ...`) that is not one of its summaries ("apt-get update ... failed",
/// "mmdebstrap failed to run", "Some index files failed to download").
func mmdebstrapError(_ fd: Int32) -> String? {
    guard let bytes = try? readFile(procPath(fd), what: "read") else { return nil }
    let errors = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        .filter { $0.hasPrefix("E: ") }
        .map { trimmed($0.dropFirst(3)) }
    let causes = errors.filter { line in
        !line.hasSuffix(" failed") && !line.hasSuffix("failed to run") && !line.hasPrefix("Some index files failed")
    }
    return causes.last ?? errors.last
}

/// The first executable file named `name` in a directory of PATH.
func programOnPath(_ name: String) -> String? {
    let path = environment("PATH") ?? "/usr/local/bin:/usr/bin:/bin"
    for dir in path.split(separator: ":") where dir.hasPrefix("/") {
        let candidate = String(dir) + "/" + name
        var info = stat()
        if stat(candidate, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && access(candidate, X_OK) == 0 {
            return candidate
        }
    }
    return nil
}

/// A pipe whose ends a spawned child does not inherit (it gets dup2'ed copies). plash is
/// single-threaded: no other spawn runs between pipe and fcntl.
func makePipe(_ ends: inout [Int32], for name: String) throws {
    try check(pipe(&ends), "create pipe for", name)
    for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
}
