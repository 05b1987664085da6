#if canImport(Glibc)
import Glibc
#endif
import CPlashShims
import PlashSystem

/// How a child process ended.
public enum Termination: Equatable {
    case exited(Int32)
    case signaled(Int32)

    public var succeeded: Bool { self == .exited(0) }

    public var text: String {
        switch self {
        case .exited(let status): return "exited with status \(status)"
        case .signaled(let signal): return "was killed by signal \(signal)"
        }
    }
}

/// Where a child's standard streams go.
public struct Streams {
    public var stdin: Redirect = .inherit
    public var stdout: Redirect = .inherit
    public var stderr: Redirect = .inherit

    public enum Redirect {
        case inherit
        case null
        case file(String, write: Bool)
        case descriptor(Int32)
    }

    public init(stdin: Redirect = .inherit, stdout: Redirect = .inherit, stderr: Redirect = .inherit) {
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// Starts `arguments` (argv[0] a path, or a name looked up in PATH) and waits for it.
/// posix_spawn rather than Foundation's Process: no threads, so plash stays
/// single-threaded and may still unshare its mount namespace.
public func spawnAndWait(_ arguments: [String], environment: [String]? = nil, streams: Streams = Streams()) throws -> Termination {
    try waitFor(try spawn(arguments, environment: environment, streams: streams), arguments[0])
}

/// Starts `arguments` as spawnAndWait does, without waiting: the caller waits with waitFor.
/// `ownProcessGroup` puts the child in a process group of its own, for programs that
/// signal their whole group (mmdebstrap sends SIGHUP to it when it fails).
public func spawn(_ arguments: [String], environment: [String]? = nil, streams: Streams = Streams(),
                  ownProcessGroup: Bool = false) throws -> pid_t {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    if ownProcessGroup {
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    for (fd, redirect) in [(Int32(0), streams.stdin), (1, streams.stdout), (2, streams.stderr)] {
        switch redirect {
        case .inherit: break
        case .null: posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
        case .file(let path, let write):
            posix_spawn_file_actions_addopen(&actions, fd, path, write ? (O_WRONLY | O_CREAT | O_TRUNC) : O_RDONLY, 0o644)
        case .descriptor(let source): posix_spawn_file_actions_adddup2(&actions, source, fd)
        }
    }
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let env = environment.map { $0.map { strdup($0) } + [nil] }
    defer { env?.forEach { free($0) } }

    var pid: pid_t = 0
    let result: Int32
    if let env {
        result = arguments[0].contains("/")
            ? posix_spawn(&pid, arguments[0], &actions, &attributes, argv, env)
            : posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, env)
    } else {
        result = arguments[0].contains("/")
            ? posix_spawn(&pid, arguments[0], &actions, &attributes, argv, environ)
            : posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environ)
    }
    if result != 0 { throw PlashError.system("run", arguments[0], errno: result) }
    return pid
}

/// Waits for a child that spawn started; `name` names it in an error.
public func waitFor(_ pid: pid_t, _ name: String) throws -> Termination {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 {
        if errno != EINTR { throw PlashError.system("wait for", name) }
    }
    // The W* macros are not imported into Swift; this is their glibc definition.
    if status & 0x7f == 0 { return .exited((status >> 8) & 0xff) }
    return .signaled(status & 0x7f)
}

/// Runs a helper program and fails with its name and status unless it succeeds.
public func runHelper(_ arguments: [String], streams: Streams = Streams(), context: String) throws {
    let end = try spawnAndWait(arguments, streams: streams)
    if !end.succeeded { throw PlashError.failure("\(context): \(arguments[0]) \(end.text)") }
}

/// The caller's environment as NAME=VALUE strings.
public func currentEnvironment() -> [String] {
    var result: [String] = []
    var pointer = environ
    while let entry = pointer.pointee {
        result.append(String(cString: entry))
        pointer += 1
    }
    return result
}

/// plash-exec: beside this program, else on PATH (companionProgram).
public func plashExecPath() throws -> String {
    if let path = companionProgram("plash-exec") { return path }
    throw PlashError.failure("plash-exec not found beside \(ownPath) nor on PATH")
        .advising("install plash's programs together with scripts/install, or put plash-exec on PATH")
}

/// Runs `body` in a child process (a fork: it may enter namespaces this process must not)
/// and returns what it returned, or throws its error as the one line it was.
func inChildProcess(_ body: () throws -> String) throws -> String {
    var ends: [Int32] = [-1, -1]
    try check(pipe(&ends), "create pipe", "")
    // Not inherited by what the child runs (newuidmap): the read ends when the child does.
    for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
    let child = fork()
    if child == -1 {
        let code = errno
        close(ends[0]); close(ends[1])
        throw PlashError.system("fork", "", errno: code)
    }
    if child == 0 {
        close(ends[0])
        var answer: String
        do {
            answer = "done " + (try body())
        } catch {
            answer = "error \(error)"
        }
        _ = try? writeAll(ends[1], Array(answer.utf8), path: "pipe")
        _exit(0)
    }
    close(ends[1])
    let answer = String(decoding: (try? readAll(ends[0], path: "pipe", what: "read", limit: 1 << 20)) ?? [], as: UTF8.self)
    close(ends[0])
    var status: Int32 = 0
    while waitpid(child, &status, 0) == -1 && errno == EINTR {}
    if answer.hasPrefix("done ") { return String(answer.dropFirst(5)) }
    if answer.hasPrefix("error ") { throw PlashError.failure(String(answer.dropFirst(6))) }
    throw PlashError.failure("a child process ended (status \(status)) without an answer")
}

/// Runs `body` as root of a user namespace of this user's own, with their subordinate
/// ids (enterUserNamespace), in a child process.
func asRootOfOwnUserNamespace(_ body: () throws -> Void) throws {
    let uid = geteuid(), gid = getegid()
    _ = try inChildProcess {
        try enterUserNamespace(CLONE_NEWUSER, uid: uid, gid: gid)
        try body()
        return ""
    }
}
