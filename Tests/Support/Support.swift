import Foundation
import Testing

/// Helpers for tests that run the built binaries for real, as CI does (as root).

/// The directory that holds the built products (plash, plash-exec, the test bundle).
public let productsDirectory: URL = {
    URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
}()

public let plashExec = productsDirectory.appendingPathComponent("plash-exec").path
public let plash = productsDirectory.appendingPathComponent("plash").path
public let plashBuilder = productsDirectory.appendingPathComponent("plash-builder").path

/// What a finished process left: exit status or the signal that killed it, and output.
public struct Finished: CustomStringConvertible {
    public var status: Int32
    public var signal: Int32?
    public var stdout: String
    public var stderr: String
    public var description: String {
        "status \(status) signal \(signal.map(String.init) ?? "-") stdout \(stdout.debugDescription) stderr \(stderr.debugDescription)"
    }
}

/// How long a test waits for a process it started, unless the call names a longer bound
/// for a slow step (a Debian build, a VM, a release build). When it passes, the process is
/// killed and its test fails saying so, rather than hanging the whole run (a broken
/// `plash kill` once held a test for 600 s). Most commands here take a second; a machine
/// shared by several test runs makes some take a minute.
public let defaultDeadline: Double = 120

/// After a deadline's SIGKILL: how long the process may take to be reaped and its pipes
/// to close (what it started may still hold them: then they are left).
let afterKill: Double = 5

/// Runs `executable` to completion, at most `deadline` seconds. The environment is
/// exactly `environment` (plus a PATH, if not given), so tests see what a caller's
/// variables do.
@discardableResult
public func run(_ executable: String, _ arguments: [String], stdin: String? = nil,
                environment: [String: String] = [:], directory: String? = nil,
                deadline: Double = defaultDeadline) throws -> Finished {
    let child = try Child(executable, arguments, environment: environment, directory: directory,
                          stdin: stdin == nil ? .null : .pipe, deadline: deadline)
    return child.finish(feeding: stdin)
}

/// Runs a file the test just wrote, the way the kernel does (its #! line names the
/// interpreter). A test running in parallel may hold it open for writing for a moment (a
/// child it spawns inherits the descriptor until it execs): ETXTBSY, so try again.
public func runWrittenFile(_ file: String, _ arguments: [String], stdin: String? = nil,
                           environment: [String: String], directory: String? = nil) throws -> Finished {
    for _ in 0..<50 {
        do {
            return try run(file, arguments, stdin: stdin, environment: environment, directory: directory)
        } catch let error as POSIXError where error.code == .ETXTBSY {
            usleep(20_000)
        }
    }
    return try run(file, arguments, stdin: stdin, environment: environment, directory: directory)
}

/// A process started with posix_spawn: a clean signal mask and default signal
/// dispositions, like a shell or a supervisor would give it. (Foundation's Process
/// passes on the blocked signals of the thread that starts it.) Each wait for it (a
/// line, its output, its exit) lasts at most `deadline` seconds: then it is killed and
/// the test fails (`Issue.record`), naming the command.
public final class Child: @unchecked Sendable {
    public enum Input { case null, pipe }
    public let pid: pid_t
    public private(set) var stdin: Int32 = -1
    public let stdout: Int32
    private let stderr: Int32
    public let deadline: Double
    private let commandLine: String

    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                directory: String? = nil, stdin input: Input = .null, deadline: Double = defaultDeadline) throws {
        var env = environment
        if env["PATH"] == nil { env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }
        var inPipe: [Int32] = [-1, -1], outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        guard makePipe(&outPipe), makePipe(&errPipe), input == .null || makePipe(&inPipe) else {
            throw POSIXError(.EMFILE)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if input == .pipe {
            posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        // posix_spawn cannot change directory portably: let a shell do it, then exec.
        var argv = [executable] + arguments
        var path = executable
        if let directory {
            path = "/bin/sh"
            argv = ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", directory] + argv
        }
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, &attributes, cArgs, cEnv)
        close(outPipe[1]); close(errPipe[1])
        if input == .pipe { close(inPipe[0]) }
        guard result == 0 else {
            close(outPipe[0]); close(errPipe[0])
            if input == .pipe { close(inPipe[1]) }
            throw POSIXError(POSIXErrorCode(rawValue: result) ?? .ENOENT)
        }
        self.pid = pid
        self.stdin = inPipe[1]
        self.stdout = outPipe[0]
        self.stderr = errPipe[0]
        self.deadline = deadline
        self.commandLine = String(([executable] + arguments).joined(separator: " ").prefix(300))
    }

    public func closeStdin() {
        if stdin >= 0 { close(stdin); stdin = -1 }
    }

    /// Reads one line of stdout (without the newline); "" at end of file, or when no
    /// line came within the deadline (then the child is killed and the test fails).
    public func readLine() -> String {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        let end = Date().addingTimeInterval(deadline)
        while true {
            guard waitReadable([stdout], until: end) else {
                overran("no line on stdout")
                break
            }
            let n = read(stdout, &byte, 1)
            if n == -1 && errno == EINTR { continue }
            if n != 1 || byte == 10 { break }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `input` to stdin (when given), then finishes. A child that exits without
    /// reading it must fail its test, not kill the test process with SIGPIPE.
    public func finish(feeding input: String?) -> Finished {
        if let input {
            signal(SIGPIPE, SIG_IGN)   // children start with default dispositions (SETSIGDEF)
            writeAll(Array(input.utf8), until: Date().addingTimeInterval(deadline))
        }
        return finish()
    }

    /// Reads the rest of stdout and stderr, then waits for the exit, together at most
    /// the deadline: past it, the child is killed and the test fails. Again (a server's
    /// stop() in a test and in its defer), the same result: closing the pipes twice
    /// would close what another test's thread has opened under those numbers since.
    public func finish() -> Finished {
        let (result, overrun) = finishWithinDeadline()
        if let overrun { overran(overrun, killed: false) }
        return result
    }

    /// finish() for a caller that expects a child may overrun (and checks that it did
    /// not): the child is killed then, and why comes back instead of failing the test.
    public func finishWithinDeadline() -> (Finished, overrun: String?) {
        finishing.lock()
        defer { finishing.unlock() }
        if let result = finished { return (result, nil) }
        closeStdin()
        let end = Date().addingTimeInterval(deadline)
        var output: [[UInt8]] = [[], []]
        var overrun: String?
        if !readToEnd([stdout, stderr], into: &output, until: end) || wait(until: end) == nil {
            overrun = isRunning ? "still running after \(deadline) s: killed" : "its output still open after \(deadline) s"
            kill(pid, SIGKILL)
            _ = readToEnd([stdout, stderr], into: &output, until: Date().addingTimeInterval(afterKill))
        }
        close(stdout); close(stderr)
        let (status, signal) = wait(until: Date().addingTimeInterval(afterKill)) ?? (-1, SIGKILL)
        let result = Finished(status: status, signal: signal, stdout: String(decoding: output[0], as: UTF8.self),
                              stderr: String(decoding: output[1], as: UTF8.self))
        finished = result
        return (result, overrun)
    }
    private let finishing = NSLock()
    private var finished: Finished?

    /// Waits for the exit, at most the deadline (then the child is killed and the test
    /// fails): (status, nil) or (-1, signal).
    public func wait() -> (Int32, Int32?) {
        if let exit = wait(until: Date().addingTimeInterval(deadline)) { return exit }
        overran("still running after \(deadline) s")
        return wait(until: Date().addingTimeInterval(afterKill)) ?? (-1, SIGKILL)
    }

    /// Waits up to `timeout` seconds for the exit; nil while it still runs (then the
    /// caller kills it: a test must not hang).
    public func wait(timeout: Double) -> (Int32, Int32?)? {
        wait(until: Date().addingTimeInterval(timeout))
    }

    private func wait(until end: Date) -> (Int32, Int32?)? {
        repeat {
            if let exit = exited.value { return exit }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { return record(status) }
            usleep(10_000)
        } while Date() < end
        return exited.value
    }

    /// Whether the child has not exited (and not been reaped).
    private var isRunning: Bool {
        guard exited.value == nil else { return false }
        var info = siginfo_t()
        return waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info._sifields._kill.si_pid == 0
    }

    /// The test fails naming the command and why; the child is killed (SIGKILL: it is
    /// ours, and a hung program may ignore anything gentler).
    private func overran(_ why: String, killed: Bool = true) {
        if killed { kill(pid, SIGKILL) }
        Issue.record("deadline: \(commandLine): \(why)\(killed ? ": killed" : "")")
    }

    private let exited = Locked<(Int32, Int32?)?>(nil)

    private func record(_ status: Int32) -> (Int32, Int32?) {
        let exit: (Int32, Int32?) = status & 0x7f == 0 ? ((status >> 8) & 0xff, nil) : (-1, status & 0x7f)
        exited.set(exit)
        return exit
    }

    /// Writes all of `bytes` to stdin unless the child stops reading (EPIPE) or the
    /// deadline passes (then the child is killed and the test fails).
    private func writeAll(_ bytes: [UInt8], until end: Date) {
        _ = fcntl(stdin, F_SETFL, fcntl(stdin, F_GETFL) | O_NONBLOCK)
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { write(stdin, $0.baseAddress, $0.count) }
            if n > 0 { done += n; continue }
            guard n == -1 && (errno == EAGAIN || errno == EINTR) else { return }
            var entry = pollfd(fd: stdin, events: Int16(POLLOUT), revents: 0)
            guard poll(&entry, 1, milliseconds(until: end)) >= 0 || errno == EINTR, Date() < end else {
                overran("did not read its stdin")
                return
            }
        }
    }
}

/// A pipe whose ends are closed in spawned children (they get dup2'ed copies).
func makePipe(_ fds: inout [Int32]) -> Bool {
    guard pipe(&fds) == 0 else { return false }
    fds.forEach { _ = fcntl($0, F_SETFD, FD_CLOEXEC) }
    return true
}

func milliseconds(until end: Date) -> Int32 {
    Int32(max(0, min(end.timeIntervalSinceNow * 1000, 60_000)).rounded(.up))
}

/// Waits until one of `fds` can be read (or is at its end); false when `end` passed first.
func waitReadable(_ fds: [Int32], until end: Date) -> Bool {
    var entries = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
    while true {
        let n = poll(&entries, nfds_t(entries.count), milliseconds(until: end))
        if n > 0 { return true }
        if n == -1 && errno != EINTR { return true }   // let read() report it
        if Date() >= end { return false }
    }
}

/// Reads each of `fds` to its end into the matching buffer; false when `end` passed
/// before every one of them ended.
func readToEnd(_ fds: [Int32], into buffers: inout [[UInt8]], until end: Date) -> Bool {
    var open = Array(fds.indices)
    var chunk = [UInt8](repeating: 0, count: 65536)
    while !open.isEmpty {
        guard waitReadable(open.map { fds[$0] }, until: end) else { return false }
        for index in open {
            var entry = pollfd(fd: fds[index], events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 0) > 0 else { continue }
            let n = read(fds[index], &chunk, chunk.count)
            if n > 0 { buffers[index] += chunk[0..<n] } else if n == -1 && errno == EINTR { continue } else { open.removeAll { $0 == index } }
        }
    }
    return true
}

/// Runs a shell command line on the host (bash -c).
@discardableResult
public func shell(_ command: String, environment: [String: String] = [:],
                  deadline: Double = defaultDeadline) throws -> Finished {
    try run("/bin/bash", ["-c", command], environment: environment, deadline: deadline)
}

public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    private var isSet = false
    public init(_ value: Value) { stored = value }
    public func set(_ value: Value) { lock.lock(); stored = value; isSet = true; lock.unlock() }
    public var value: Value { lock.lock(); defer { lock.unlock() }; return stored }
    public var done: Bool { lock.lock(); defer { lock.unlock() }; return isSet }
}

/// Why a test's setup failed (a tool missing, a command that failed): the test that
/// needed it fails with this message, and the other tests still run.
public struct SetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A value made once per test process, on first use. Making it may fail (a tool is
/// missing): then each test that uses it fails with that error, instead of a `try!`
/// in a global crashing the whole test process.
public final class Fixture<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var made: Result<Value, any Error>?
    private let make: () throws -> Value
    public init(_ make: @escaping () throws -> Value) { self.make = make }
    public func get() throws -> Value {
        lock.lock()
        defer { lock.unlock() }
        if made == nil { made = Result { try make() } }
        return try made!.get()
    }
}

/// One scratch directory per test process, under /var/tmp (not shared into
/// containers, unlike /tmp), removed at exit. When it cannot be made, the first use
/// of a directory inside it fails the test that uses it.
public let scratch: String = {
    let dir = "/var/tmp/plash-tests-\(getpid())"
    try? FileManager.default.removeItem(atPath: dir)
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: "/var/tmp/plash-tests-\(getpid())") }
    return dir
}()

private let counter = Locked(0)

/// A new empty directory inside `scratch` (see there for failures).
public func makeDirectory(_ name: String = "dir") -> String {
    let n: Int = { let v = counter.value + 1; counter.set(v); return v }()
    let dir = "\(scratch)/\(name)-\(n)-\(UUID().uuidString.prefix(8))"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// A root filesystem made of Debian's static busybox and a link for each applet,
/// created once per test process. Tests must not change it (containers cannot).
public var busyboxRoot: String { get throws { try busyboxRootFixture.get() } }
private let busyboxRootFixture = Fixture { try makeBusyboxRoot(at: "\(scratch)/busybox-root") }

public func makeBusyboxRoot(at dir: String) throws -> String {
    let fm = FileManager.default
    let busybox = "/bin/busybox"
    if let line = missing([.busybox], path: "/bin") { throw SetupError(line) }
    try fm.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
    try fm.createDirectory(atPath: dir + "/etc", withIntermediateDirectories: true)
    try copyExecutable(busybox, to: dir + "/bin/busybox")
    let applets = try run(busybox, ["--list"]).stdout.split(separator: "\n")
    for applet in applets where applet != "busybox" {
        try fm.createSymbolicLink(atPath: "\(dir)/bin/\(applet)", withDestinationPath: "busybox")
    }
    try "root:x:0:0:root:/root:/bin/sh\n".write(toFile: dir + "/etc/passwd", atomically: true, encoding: .utf8)
    try "root:x:0:\n".write(toFile: dir + "/etc/group", atomically: true, encoding: .utf8)
    return dir
}

/// Kernel features missing here skip a test, except in CI (PLASH_TESTS_MUST_RUN=1),
/// where a skip would hide a regression.
public var mustRun: Bool { ProcessInfo.processInfo.environment["PLASH_TESTS_MUST_RUN"] == "1" }

public var isRoot: Bool { geteuid() == 0 }

/// Every file below `dir` with its type, size and mode: equal listings mean an
/// unchanged tree.
public func treeListing(_ dir: String) throws -> [String] {
    let result = try shell("cd '\(dir)' && find . -printf '%p %y %s %m %l\\n' | sort")
    return result.stdout.split(separator: "\n").map(String.init)
}

/// The mount table of the test process, minus lines that mention the scratch
/// directory (other tests may legitimately mount there).
public func hostMounts() throws -> [String] {
    (try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8))
        .split(separator: "\n").map(String.init).filter { !$0.contains(scratch) }
}

/// The probe (Tests/Probe/probe.c), compiled statically once per test process.
public var probe: String { get throws { try probeFixture.get() } }
private let probeFixture = Fixture {
    let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    let source = tests.appendingPathComponent("Probe/probe.c").path
    let binary = scratch + "/probe"
    let compiler = "/usr/bin/cc"
    if let line = missing([.cc], path: "/usr/bin") { throw SetupError("cannot compile the probe: " + line) }
    let result = try run(compiler, ["-static", "-O2", "-o", binary, source])
    guard result.status == 0 else { throw SetupError("cannot compile the probe: \(result.stderr)") }
    return binary
}

/// A busybox root with the probe in /bin, made once per test process.
public var probeRoot: String { get throws { try probeRootFixture.get() } }
private let probeRootFixture = Fixture {
    let root = try makeBusyboxRoot(at: makeDirectory("probe-root"))
    try copyExecutable(probe, to: root + "/bin/probe")
    return root
}

/// A real ordinary user for the unprivileged tests, created once (useradd), with or
/// without subordinate ids in /etc/subuid and /etc/subgid.
public struct TestUser: Sendable {
    public let name: String
    public let uid: uid_t
    public let home: String

    /// Runs a command as this user with setpriv, which execs in place: the PID the
    /// test starts is the PID of the command.
    public func start(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                      directory: String? = nil, stdin: Child.Input = .null,
                      deadline: Double = defaultDeadline) throws -> Child {
        var env = ["HOME": home, "USER": name, "LOGNAME": name]
        env.merge(environment) { $1 }
        return try Child("/usr/bin/setpriv", ["--reuid=\(uid)", "--regid=\(uid)", "--init-groups", "--", executable]
                         + arguments, environment: env, directory: directory, stdin: stdin, deadline: deadline)
    }

    @discardableResult
    public func run(_ executable: String, _ arguments: [String], stdin: String? = nil,
                    environment: [String: String] = [:], directory: String? = nil,
                    deadline: Double = defaultDeadline) throws -> Finished {
        try start(executable, arguments, environment: environment, directory: directory,
                  stdin: stdin == nil ? .null : .pipe, deadline: deadline).finish(feeding: stdin)
    }
}

/// The two test users. Created on first use and kept: see README.md, "Tests".
public var userWithSubordinateIDs: TestUser { get throws { try userWithSubordinateIDsFixture.get() } }
public var userWithoutSubordinateIDs: TestUser { get throws { try userWithoutSubordinateIDsFixture.get() } }
private let userWithSubordinateIDsFixture = Fixture { try makeTestUser("plash-test-sub", subordinateIDs: true) }
private let userWithoutSubordinateIDsFixture = Fixture { try makeTestUser("plash-test-nosub", subordinateIDs: false) }

/// Idempotent: the user is added only when missing, and /etc/subuid and /etc/subgid are
/// rewritten only when the user's lines are not already exactly the wanted ones (useradd
/// may have added a range of its own). Test processes of other checkouts do this at the
/// same time, so under a lock.
func makeTestUser(_ name: String, subordinateIDs: Bool) throws -> TestUser {
    // uid n gets the subordinate range n * 100000 ..+65536, above any useradd hands out.
    let script = """
        set -e
        exec 9>/run/lock/plash-test-users.lock
        flock 9
        id -u \(name) >/dev/null 2>&1 || useradd --create-home --shell /bin/sh \(name)
        uid=$(id -u \(name))
        wanted=\(subordinateIDs ? "\"\(name):$((uid * 100000)):65536\"" : "")
        for file in /etc/subuid /etc/subgid; do
            [ "$(grep "^\(name):" $file || true)" = "$wanted" ] && continue
            { grep -v "^\(name):" $file || true; [ -z "$wanted" ] || echo "$wanted"; } > $file.plash-test
            cat $file.plash-test > $file && rm $file.plash-test
        done
        echo $uid; getent passwd \(name) | cut -d: -f6
        """
    let result = try shell(script)
    let lines = result.stdout.split(separator: "\n")
    guard result.status == 0, lines.count == 2, let uid = uid_t(lines[0]) else {
        throw SetupError("cannot create test user \(name): \(result.stderr)")
    }
    return TestUser(name: name, uid: uid, home: String(lines[1]))
}

/// The built binaries, copied where every user may run them.
public var sharedBinaries: String { get throws { try sharedBinariesFixture.get() } }
private let sharedBinariesFixture = Fixture {
    let dir = scratch + "/bin"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    try copyExecutable(plashExec, to: dir + "/")
    try copyPlash(to: dir)
    return dir
}

/// The built binaries where the test users may run them.
public var userPlash: String { get throws { try sharedBinaries + "/plash" } }
public var userExec: String { get throws { try sharedBinaries + "/plash-exec" } }

/// A directory that `user` owns, under the scratch directory.
public func makeDirectory(_ name: String, ownedBy user: TestUser) -> String {
    let dir = makeDirectory(name)
    chown(dir, user.uid, user.uid)
    return dir
}

/// Copies plash into `dir`: the front and the builder it hands over to, as scripts/install
/// puts them side by side.
public func copyPlash(to dir: String) throws {
    try copyExecutable(plash, to: dir + "/plash")
    try copyExecutable(plashBuilder, to: dir + "/plash-builder")
}

/// Copies an executable with cp. A file this process held open for writing could leak
/// into children that other tests spawn meanwhile, and its exec would fail (ETXTBSY).
public func copyExecutable(_ source: String, to destination: String) throws {
    let copied = try run("/bin/cp", [source, destination])
    guard copied.status == 0 else { throw SetupError("cannot copy \(source): \(copied.stderr)") }
}

/// Runs `executable`, killing it when it has not ended within `seconds`: an input that
/// makes it loop or read forever fails the test (`ended` false) instead of hanging it.
public func runWithDeadline(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                            seconds: Double = 30) throws -> (result: Finished, ended: Bool) {
    let (result, overrun) = try Child(executable, arguments, environment: environment, deadline: seconds).finishWithinDeadline()
    return (result, overrun == nil)
}
