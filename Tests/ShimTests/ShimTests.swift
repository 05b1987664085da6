import Foundation
import Testing
import PlashTestSupport

// Each test runs the built plash-exec, as root, on a busybox root made at test time.

func exec(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:],
          directory: String? = nil) throws -> Finished {
    try run(plashExec, arguments, stdin: stdin, environment: environment, directory: directory)
}

func inBusybox(_ script: String, options: [String] = [], environment: [String: String] = [:],
               directory: String? = nil) throws -> Finished {
    try exec(options + ["--root", busyboxRoot, "--", "sh", "-c", script],
             environment: environment, directory: directory)
}

/// Starts plash-exec without waiting for it.
func start(_ arguments: [String], stdin: Child.Input = .null) throws -> Child {
    try Child(plashExec, arguments, stdin: stdin)
}

/// Processes of plash-exec that belong to the container of `pid`: its parent, or
/// anything in its mount namespace.
func plashExecProcesses(of pid: pid_t) -> [String] {
    let fm = FileManager.default
    let namespace = try? fm.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/mnt")
    let pids = (try? fm.contentsOfDirectory(atPath: "/proc"))?.filter { Int($0) != nil } ?? []
    return pids.filter {
        (try? fm.destinationOfSymbolicLink(atPath: "/proc/\($0)/exe")) == plashExec
            && (try? fm.destinationOfSymbolicLink(atPath: "/proc/\($0)/ns/mnt")) == namespace
    }
}

func parent(of pid: pid_t) -> String? {
    let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
    return stat?.split(separator: ")").last?.split(separator: " ").dropFirst().first.map(String.init)
}

// 1. Same PID

@Test func theProgramRunsInThePIDTheCallerStartedAndNoPlashProcessRemains() throws {
    let child = try start(["--root", busyboxRoot, "--", "sh", "-c", "echo $$; read line; exit 3"], stdin: .pipe)
    #expect(child.readLine() == String(child.pid))
    #expect(plashExecProcesses(of: child.pid).isEmpty)
    #expect(parent(of: child.pid) == String(getpid()))
    let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(child.pid)/exe")
    #expect(exe == "/bin/busybox")
    #expect(child.finish().status == 3)
}

// 2. Passthrough stdio

@Test func stdinAndStdoutPassThrough() throws {
    let result = try exec(["--root", busyboxRoot, "--", "tr", "a-z", "A-Z"], stdin: "a\nb\n")
    #expect(result.stdout == "A\nB\n")
    #expect(result.status == 0)
}

@Test func stderrReachesTheCallersStderr() throws {
    let result = try inBusybox("echo oops >&2")
    #expect(result.stderr == "oops\n")
    #expect(result.stdout == "")
}

@Test func underATerminalStdinIsATerminalInside() throws {
    let command = try "\(plashExec) --root \(busyboxRoot) -- sh -c '[ -t 0 ] && [ -t 1 ] && echo is-a-tty'"
    let result = try run("/usr/bin/script", ["-qec", command, "/dev/null"])
    #expect(result.stdout.contains("is-a-tty"), "\(result)")
}

// 3. Exit status and signals

@Test func theExitStatusIsTheProgramsOwn() throws {
    #expect(try inBusybox("exit 42").status == 42)
    #expect(try inBusybox("true").status == 0)
}

@Test func aSignalFromOutsideEndsTheProgramAsIfItRanWithoutPlash() throws {
    let child = try start(["--root", busyboxRoot, "--", "sh", "-c", "echo ready; exec sleep 100"])
    #expect(child.readLine() == "ready")
    kill(child.pid, SIGTERM)
    let finished = child.finish()
    #expect(finished.signal == SIGTERM, "\(finished)")
}

// 4. Exit codes and one-line errors

@Test func aMissingCommandExits127() throws {
    let result = try exec(["--root", busyboxRoot, "--", "no-such-command"])
    #expect(result.status == 127)
    #expect(result.stderr == "plash-exec: exec no-such-command: No such file or directory\n")
}

@Test func anEmptyCommandIsNotFoundAndExits127AsExecvpSays() throws {
    let result = try exec(["--root", busyboxRoot, "--", ""])
    #expect(result.status == 127, "\(result)")
    #expect(result.stderr.hasSuffix(": No such file or directory\n") && result.stderr.split(separator: "\n").count == 1, "\(result)")
}

/// `plash-exec ./Plashfle` (a Plashfile's path mistyped): the path names nothing, said
/// as plash says it, rather than that it is no image id or name.
@Test func aPathThatNamesNothingSaysSoAndExits125() throws {
    let missing = makeDirectory("no plashfile") + "/Plashfle"
    let result = try exec([missing, "arg"])
    #expect(result.status == 125, "\(result)")
    #expect(result.stderr == "plash-exec: \(missing): No such file or directory\n", "\(result)")
    #expect(try exec(["--root=/nonexistent", "true"]).stderr == "plash-exec: layer /nonexistent: No such file or directory\n")
}

@Test func aFileThatCannotBeExecutedExits126() throws {
    let dir = "/tmp/plash-test-\(getpid())-noexec"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = FileManager.default.createFile(atPath: dir + "/data", contents: Data("x".utf8))
    let result = try exec(["--root", busyboxRoot, "--", dir + "/data"])
    #expect(result.status == 126)
    #expect(result.stderr == "plash-exec: exec \(dir)/data: Permission denied\n")
}

@Test func setupFailuresExit125WithOneLine() throws {
    let cases: [([String], String)] = try [
        (["--root", "/nonexistent", "true"], "plash-exec: layer /nonexistent: No such file or directory\n"),
        (["--frob", "--root", busyboxRoot, "true"], "plash-exec: --frob: unknown option (see plash-exec --help)\n"),
        (["--bind", "/nonexistent:/x", "--root", busyboxRoot, "true"],
         "plash-exec: bind source /nonexistent: No such file or directory\n"),
        (["--cwd", "/nonexistent", "--root", busyboxRoot, "true"], "plash-exec: chdir /nonexistent: No such file or directory\n"),
    ]
    for (arguments, message) in cases {
        let result = try exec(arguments)
        #expect(result.status == 125, "\(arguments)")
        #expect(result.stderr == message)
    }
}

@Test func helpListsEveryOptionAndExitsZero() throws {
    let result = try exec(["--help"])
    #expect(result.status == 0)
    for option in ["--root", "--lower", "--persist", "--bind", "--ro-bind", "--env", "--cwd", "--no-home",
                   "--no-tmp", "--hostname", "--net", "--help", "--version", "PLASH_EXPORT"] {
        #expect(result.stdout.contains(option), "\(option)")
    }
    #expect(try exec(["--version"]).stdout.hasPrefix("plash-exec "))
}

// 5. Writes

@Test func writesInsideNeverChangeTheImage() throws {
    let lower = try makeBusyboxRoot(at: makeDirectory("lower"))
    let before = try treeListing(busyboxRoot), beforeLower = try treeListing(lower)
    let script = "echo new > /file && rm /bin/ls && echo changed > /etc/passwd && mkdir /newdir"
    #expect(try inBusybox(script).status == 0)
    #expect(try exec(["--lower", lower, "--lower", busyboxRoot, "--", "sh", "-c", script]).status == 0)
    #expect(try treeListing(busyboxRoot) == before)
    #expect(try treeListing(lower) == beforeLower)
}

@Test func persistedWritesLandInTheDirectoryAndTheNextRunSeesThem() throws {
    let persist = makeDirectory("persist") + "/upper"
    let first = try exec(["--persist", persist, "--root", busyboxRoot, "--", "sh", "-c", "echo kept > /kept; rm /bin/vi"])
    #expect(first.status == 0, "\(first)")
    #expect(try String(contentsOfFile: persist + "/kept", encoding: .utf8) == "kept\n")
    let second = try exec(["--persist", persist, "--root", busyboxRoot, "--", "sh", "-c", "cat /kept; ls /bin/vi"])
    #expect(second.stdout == "kept\n")
    #expect(second.status != 0)
    let third = try inBusybox("ls /kept")
    #expect(third.status != 0)
}

@Test func withoutPersistNothingIsLeftOnTheHost() throws {
    // Other tests and other programs come and go in /tmp and /var/tmp meanwhile: look for
    // what this container wrote, by its names, rather than for any change there.
    let name = "plash-left-\(getpid())-\(UUID().uuidString.prefix(8))"
    let mountsBefore = try hostMounts()
    let result = try inBusybox("echo x > /\(name); mkdir -p /\(name)-dir/b/c; echo y > /\(name)-dir/b/c/\(name)-y")
    #expect(result.status == 0, "\(result)")
    #expect(try hostMounts() == mountsBefore)
    let found = try shell("find /tmp /var/tmp -xdev -name '\(name)*' 2>/dev/null")
    #expect(found.stdout == "", "the container's writes are left on the host")
}

// 6. Shared with the host; a clean environment

@Test func theWorkingDirectoryIsSharedAndEntered() throws {
    let dir = makeDirectory("cwd")
    _ = FileManager.default.createFile(atPath: dir + "/host-file", contents: Data("host\n".utf8))
    let result = try inBusybox("pwd; cat host-file; echo back > from-container", directory: dir)
    #expect(result.stdout == "\(dir)\nhost\n")
    #expect(try String(contentsOfFile: dir + "/from-container", encoding: .utf8) == "back\n")
}

@Test func aWorkingDirectoryTheImageHasIsEnteredNotShadowed() throws {
    let result = try inBusybox("pwd; cat group", directory: "/etc")
    #expect(result.stdout == "/etc\nroot:x:0:\n", "\(result)")
}

@Test func tmpHomeAndNameServiceFilesAreShared() throws {
    let name = "plash-test-\(getpid())-shared"
    try "tmp\n".write(toFile: "/tmp/\(name)", atomically: true, encoding: .utf8)
    try "home\n".write(toFile: "/home/\(name)", atomically: true, encoding: .utf8)
    defer {
        try? FileManager.default.removeItem(atPath: "/tmp/\(name)")
        try? FileManager.default.removeItem(atPath: "/home/\(name)")
    }
    let home = makeDirectory("home")
    try "mine\n".write(toFile: home + "/.profile-test", atomically: true, encoding: .utf8)
    let result = try inBusybox("cat /tmp/\(name) /home/\(name) \"$HOME/.profile-test\" /etc/resolv.conf /etc/hosts",
                               environment: ["HOME": home])
    let resolv = try String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)
    let hosts = try String(contentsOfFile: "/etc/hosts", encoding: .utf8)
    #expect(result.stdout == "tmp\nhome\nmine\n" + resolv + hosts, "\(result)")
}

@Test func noHomeAndNoTmpHideThem() throws {
    // A file in each, so that hiding them means something even where /home is empty.
    let name = "plash-test-\(getpid())-hidden"
    try "x".write(toFile: "/tmp/\(name)", atomically: true, encoding: .utf8)
    try "x".write(toFile: "/home/\(name)", atomically: true, encoding: .utf8)
    defer {
        try? FileManager.default.removeItem(atPath: "/tmp/\(name)")
        try? FileManager.default.removeItem(atPath: "/home/\(name)")
    }
    let script = "for f in /tmp/\(name) /home/\(name); do [ -e $f ] && echo $f; done; true"
    #expect(try inBusybox(script).stdout == "/tmp/\(name)\n/home/\(name)\n")
    #expect(try inBusybox(script, options: ["--no-tmp"]).stdout == "/home/\(name)\n")
    #expect(try inBusybox(script, options: ["--no-home"]).stdout == "/tmp/\(name)\n")
    #expect(try inBusybox(script, options: ["--no-tmp", "--no-home"]).stdout == "")
}

@Test func theEnvironmentIsCleanWithADefaultPath() throws {
    let result = try inBusybox("env | sort", options: ["--env", "SET=yes", "--env", "PASSED"],
                               environment: ["SECRET": "s", "A": "a", "B": "b", "C": "c", "PASSED": "p",
                                             "PLASH_EXPORT": "A:B", "HOME": "/root", "PATH": "/caller/bin"])
    let names = result.stdout.split(separator: "\n").map { $0.split(separator: "=")[0] }
    #expect(!names.contains("SECRET") && !names.contains("C"))
    #expect(result.stdout.contains("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"))
    #expect(result.stdout.contains("A=a\nB=b\n"))
    #expect(result.stdout.contains("SET=yes\n") && result.stdout.contains("PASSED=p\n"))
}

@Test func extraBindsAndReadOnlyBinds() throws {
    let dir = makeDirectory("bind")
    let result = try inBusybox("echo rw > /mnt/rw/f && cat /mnt/rw/f && (echo no > /mnt/ro/g) 2>/dev/null || echo refused",
                               options: ["--bind", "\(dir):/mnt/rw", "--ro-bind", "\(dir):/mnt/ro"])
    #expect(result.stdout == "rw\nrefused\n", "\(result)")
    #expect(!FileManager.default.fileExists(atPath: dir + "/g"))
}

@Test func aBindThatFailsNamesItsSourceAndDestination() throws {
    let file = makeDirectory("bind-file") + "/file"
    FileManager.default.createFile(atPath: file, contents: nil)
    let result = try inBusybox("true", options: ["--bind", "\(file):/etc"])
    #expect(result.status == 125)
    #expect(result.stderr == "plash-exec: bind \(file) on /etc: Not a directory\n", "\(result)")
}

@Test func aBindOntoTheRootIsRefusedNotIgnored() throws {
    let dir = makeDirectory("bind-root")
    // `..` and a symlink lead there too; each is the root once opened.
    let image = makeDirectory("link-to-root")
    try FileManager.default.createDirectory(atPath: image + "/bin", withIntermediateDirectories: true)
    try copyExecutable("/bin/busybox", to: image + "/bin/sh")
    try FileManager.default.createDirectory(atPath: image + "/etc", withIntermediateDirectories: true)
    try FileManager.default.createSymbolicLink(atPath: image + "/up", withDestinationPath: "/etc/..")
    for destination in ["/", "//", "/.", "/..", "/etc/..", "/up"] {
        let result = try exec(["--bind", "\(dir):\(destination)", "--root", image, "--", "sh", "-c", "true"])
        #expect(result.status == 125, "\(destination): \(result)")
        #expect(result.stderr == "plash-exec: bind \(dir) on \(destination): the root is the image (use --root \(dir))\n",
                "\(destination): \(result)")
    }
}

@Test func aTmpfsOntoTheRootIsRefusedNotIgnored() throws {
    for destination in ["/..", "/etc/.."] {
        let result = try inBusybox("true", options: ["--tmpfs", destination])
        #expect(result.status == 125 && result.stderr.split(separator: "\n").count == 1, "\(destination): \(result)")
    }
}

@Test(arguments: ["/", "/proc/self/root"])
func aBindOfTheHostsRootShowsTheHostsFiles(_ source: String) throws {
    let marker = makeDirectory("marker") + "/file"
    try "host\n".write(toFile: marker, atomically: false, encoding: .utf8)
    for mode in [[], ["--isolate"]] {
        let result = try inBusybox("cat /host\(marker)", options: mode + ["--bind", source + ":/host"])
        #expect(result.stdout == "host\n", "\(mode): \(result)")
    }
}

@Test func aBindOverProcIsTheContainersProc() throws {
    let dir = makeDirectory("proc")
    FileManager.default.createFile(atPath: dir + "/mine", contents: nil)
    let result = try inBusybox("ls /proc", options: ["--bind", dir + ":/proc"])
    #expect(result.stdout == "mine\n" && result.status == 0, "\(result)")
}

@Test func aSymlinkInTheImageCannotLeadAMountOutOfIt() throws {
    let image = makeDirectory("evil")
    try FileManager.default.createDirectory(atPath: image + "/bin", withIntermediateDirectories: true)
    try copyExecutable("/bin/busybox", to: image + "/bin/sh")
    let outside = makeDirectory("outside")
    try FileManager.default.createSymbolicLink(atPath: image + "/mnt", withDestinationPath: outside)
    let result = try exec(["--bind", "\(makeDirectory("src")):/mnt/sub", "--root", image, "--", "/bin/sh", "-c", "true"])
    #expect(result.status == 0, "\(result)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
}

// 7. The host's mount table

@Test func theHostsMountTableDoesNotChangeWhileTheContainerRuns() throws {
    // Where the host's mounts are shared (systemd makes / shared), a mount made in a copy
    // of the host's mount namespace would appear on the host too, unless the container
    // stops propagation first. This host's / may be private: share a mount of our own.
    let shared = "/var/tmp/plash-test-\(getpid())-shared-\(UUID().uuidString.prefix(8))"
    let made = try shell("mkdir -p '\(shared)' && mount -t tmpfs plash-test '\(shared)' && mount --make-shared '\(shared)' && mkdir '\(shared)/sub'")
    defer { _ = try? shell("umount -R -l '\(shared)'; rmdir '\(shared)'") }
    try #require(made.status == 0, "\(made)")
    let before = try hostMounts()
    let child = try start(["--root", busyboxRoot, "--bind", "\(shared):/mnt", "--", "sh", "-c",
                           "mount -t tmpfs inside /mnt/sub && echo up; read x"], stdin: .pipe)
    #expect(child.readLine() == "up", "the container could not mount on the shared mount")
    #expect(try hostMounts() == before)
    _ = child.finish()
    #expect(try hostMounts() == before)
}

// 8. Deep images

@Test func anImageOf128LayersRuns() throws {
    let base = makeDirectory("deep")
    var arguments: [String] = []
    for n in (1...127).reversed() {
        let layer = "\(base)/a-rather-long-layer-directory-name-\(n)"
        try FileManager.default.createDirectory(atPath: layer, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: "\(layer)/file-\(n)", contents: nil)
        arguments += ["--lower", layer]
    }
    arguments += ["--lower", try busyboxRoot]
    let result = try exec(arguments + ["--", "sh", "-c", "ls / | grep -c '^file-'"])
    #expect(result.stdout == "127\n", "\(result)")
}

// 9. Network and hostname

@Test func netNoneHasOnlyLoopbackUp() throws {
    let result = try inBusybox("ip -o link | cut -d: -f2 | tr -d ' '; ip -o link show lo | grep -c UP", options: ["--net", "none"])
    #expect(result.stdout == "lo\n1\n", "\(result)")
}

@Test func netHostSharesTheHostsNetworkNamespace() throws {
    let host = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
    let result = try inBusybox("readlink /proc/self/ns/net", options: ["--net", "none", "--net", "host"])
    #expect(result.stdout == host + "\n", "\(result)")
}

@Test func hostnameSetsTheContainersHostnameOnly() throws {
    let host = try shell("hostname").stdout
    #expect(try inBusybox("hostname", options: ["--hostname", "x"]).stdout == "x\n")
    #expect(try shell("hostname").stdout == host)
}

@Test func theOverlayIsLabelledWithItsImage() throws {
    let result = try inBusybox("grep ' / / ' /proc/self/mountinfo")
    #expect(try result.stdout.contains(" overlay plash:\(busyboxRoot) "), "\(result)")
}

/// --error-fd: plash-exec's own failure goes to FD, not stderr (plash reads it there and
/// says it once); the program never inherits FD.
@Test func errorFDTakesPlashExecsOwnFailureAndTheProgramNeverGetsIt() throws {
    let dir = makeDirectory("error-fd")
    let failed = try shell("'\(plashExec)' --error-fd 3 --root '\(dir)/none' -- true 3> '\(dir)/line'")
    #expect(failed.status == 125 && failed.stderr.isEmpty, "\(failed)")
    #expect(try String(contentsOfFile: dir + "/line", encoding: .utf8).hasPrefix("plash-exec: "))
    let ran = try shell("'\(plashExec)' --error-fd 3 --root '\(try busyboxRoot)' -- sh -c 'test -e /proc/self/fd/3 && echo inherited; exit 127' 3> '\(dir)/ran'")
    #expect(ran.status == 127 && ran.stdout.isEmpty, "\(ran)")
    #expect(try String(contentsOfFile: dir + "/ran", encoding: .utf8).isEmpty)
}

/// PLASH_OVERLAY=bogus is refused, not taken silently for the default: nothing runs.
@Test func anOverlaySettingThatIsNoneOfItsValuesIsRefusedAndNothingRuns() throws {
    let result = try shell("PLASH_OVERLAY=bogus '\(plashExec)' --root '\(try busyboxRoot)' -- echo ran")
    #expect(result.status == 125 && result.stdout.isEmpty, "\(result)")
    #expect(result.stderr.split(separator: "\n").count == 1, "\(result)")
}

/// An --error-fd that is not open is refused before anything is set up: the failure it
/// was to carry would be lost, so the program never runs.
@Test func anErrorFDThatIsNotOpenIsRefusedAndNothingRuns() throws {
    let result = try shell("'\(plashExec)' --error-fd 99 --root '\(try busyboxRoot)' -- echo ran 99<&-")
    #expect(result.status == 125 && result.stdout.isEmpty, "\(result)")
    #expect(result.stderr.split(separator: "\n").count == 1, "\(result)")
}

/// A --persist directory on overlayfs (a store on a container's own root, for plash in
/// plash) is refused by the kernel; one line says why and what to do.
@Test func aPersistDirectoryOnOverlayfsIsOneLineThatSaysSo() throws {
    let dir = makeDirectory("persist-on-overlay")
    let result = try shell("""
        mkdir -p '\(dir)/l' '\(dir)/u' '\(dir)/w' '\(dir)/o' &&
        unshare -m sh -c "mount -t overlay overlay -o lowerdir='\(dir)/l',upperdir='\(dir)/u',workdir='\(dir)/w' '\(dir)/o' &&
            exec '\(plashExec)' --persist '\(dir)/o/p' --root '\(try busyboxRoot)' -- true"
        """)
    #expect(result.status == 125, "\(result)")
    #expect(result.stderr.split(separator: "\n").count == 1 && result.stderr.contains("lies on overlayfs"), "\(result)")
}
