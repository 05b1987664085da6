#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

/// The system call filter to load last, read while the host's files are still in reach.
public enum SystemCallFilter {
    case none
    case `default`
    case program([UInt8], path: String)
}

public func systemCallFilter(_ plan: ExecPlan, store: String) throws -> SystemCallFilter {
    guard let profile = plan.seccomp else { return .none }
    if profile == "default" { return .default }
    return .program(try compiledProfile(profile, store: store), path: profile)
}

/// The BPF that `plash seccomp` compiled from this very profile, checked before it is
/// trusted (`compiledSeccompProgram`). The first time a profile is seen, plash (beside
/// this executable) compiles it: a short-lived child, and the only JSON parsing on
/// this path.
func compiledProfile(_ path: String, store: String) throws -> [UInt8] {
    let profile = try readFile(path, what: "seccomp profile", limit: seccompProfileLimit)
    if let program = try compiledSeccompProgram(profile, store: store) { return program }
    try runCompiler(profile, path: path)
    guard let program = try compiledSeccompProgram(profile, store: store) else {
        throw PlashError.failure("seccomp profile \(path): changed while it was compiled")
    }
    return program
}

/// Runs `plash seccomp - PATH` on the profile as read here, given as its stdin: a pipe
/// (`--seccomp <(...)`) reads only once. Its one-line error becomes ours.
func runCompiler(_ profile: [UInt8], path: String) throws {
    let plash = splitLast(try ownExecutable()).0 + "/plash"
    let input = try memoryFile("seccomp profile", profile)
    defer { close(input) }
    var errors: [Int32] = [0, 0]
    try check(pipe(&errors), "pipe", "")
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, input, 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, errors[1], 2)
    posix_spawn_file_actions_addclose(&actions, errors[0])
    let words: [String] = ["plash", "seccomp", "-", path]
    let argv = words.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, plash, &actions, nil, argv, environ)
    close(errors[1])
    defer { close(errors[0]) }
    guard spawned == 0 else { throw PlashError.system("compile seccomp profile with", plash, errno: spawned) }
    let message = String(decoding: try readFile("/proc/self/fd/\(errors[0])", what: "read"), as: UTF8.self)
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    guard status == 0 else {
        let line = message.split(separator: "\n").first.map(String.init) ?? "plash seccomp failed"
        throw PlashError.usage(line.hasPrefix("plash: ") ? String(line.dropFirst(7)) : line)
    }
}

func ownExecutable() throws -> String {
    guard let path = readLink("/proc/self/exe") else { throw PlashError.system("readlink", "/proc/self/exe") }
    return path
}

/// no_new_privs, then the filter, then --isolate's own rules on top (whatever the
/// profile allows, they hold): the last step before exec, so that plash-exec's own
/// setup is not subject to them.
public func restrictSystemCalls(_ filter: SystemCallFilter, noNewPrivileges: Bool, isolate: Bool) throws {
    if case .none = filter, !noNewPrivileges, !isolate { return }
    try setNoNewPrivileges()
    switch filter {
    case .none: break
    case .default: try defaultSeccompFilter().load()
    case .program(let program, let path): try loadSeccompBPF(program, path: path)
    }
    if isolate { try isolateSeccompFilter().load() }
}
