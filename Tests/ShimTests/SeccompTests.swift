import Foundation
import Testing
import PlashTestSupport

/// A busybox root with the probe in it.
func withSeccomp(_ profile: String, _ script: String, store: String? = nil) throws -> Finished {
    try exec(["--seccomp", profile, "--root", probeRoot, "--", "sh", "-c", script],
             environment: store.map { ["PLASH_DATA": $0] } ?? [:])
}

func writeProfile(_ text: String, _ name: String = "profile.json") throws -> String {
    let path = makeDirectory("profile") + "/" + name
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Test func theDefaultFilterRefusesMountsAndNamespaces() throws {
    let result = try withSeccomp("default", "unshare -m true; mount -t tmpfs x /mnt")
    #expect(result.stderr.contains("unshare(0x20000): Operation not permitted"), "\(result)")
    #expect(result.stderr.contains("mount: permission denied"), "\(result)")
    #expect(result.status != 0)
}

@Test func theDefaultFilterRefusesTerminalInjectionEvenWithHighBitsSet() throws {
    #expect(try withSeccomp("default", "probe tiocsti").stdout == "EPERM\nEPERM\n")
    let unfiltered = try exec(["--root", probeRoot, "--", "probe", "tiocsti"])
    #expect(unfiltered.stdout == "ENOTTY\nENOTTY\n")
}

@Test func theDefaultFilterRefusesCloneWithEachNamespaceFlag() throws {
    let flags = ["CLONE_NEWNS", "CLONE_NEWUTS", "CLONE_NEWIPC", "CLONE_NEWUSER", "CLONE_NEWPID", "CLONE_NEWNET",
                 "CLONE_NEWCGROUP"]
    let unfiltered = try exec(["--root", probeRoot, "--", "probe", "clone"])
    #expect(unfiltered.stdout == flags.map { "\($0) ok\n" }.joined(), "\(unfiltered)")
    let filtered = try withSeccomp("default", "probe clone")
    #expect(filtered.stdout == flags.map { "\($0) EPERM\n" }.joined(), "\(filtered)")
}

@Test func theDefaultFilterSaysClone3IsNotImplementedSoLibcFallsBackToClone() throws {
    #expect(try exec(["--root", probeRoot, "--", "probe", "clone3"]).stdout == "ok\n")
    #expect(try withSeccomp("default", "probe clone3").stdout == "ENOSYS\n")
    // And what libc forks with still works.
    #expect(try withSeccomp("default", "(true &) && wait && echo forked").stdout == "forked\n")
}

@Test func theDefaultFilterRefusesTIOCLINUX() throws {
    #expect(try exec(["--root", probeRoot, "--", "probe", "tioclinux"]).stdout == "ENOTTY\n")
    #expect(try withSeccomp("default", "probe tioclinux").stdout == "EPERM\n")
}

@Test func underTheDefaultFilterEverydayProgramsWork() throws {
    let site = makeDirectory("site")
    try "served\n".write(toFile: site + "/index.html", atomically: true, encoding: .utf8)
    let server = try HTTPServer(root: site)
    defer { server.stop() }
    let script = """
        ls /bin/sh >/dev/null && tar cf - /etc | tar tf - >/dev/null && (sleep 0.1 & wait) \
        && wget -q -O - http://127.0.0.1:\(server.port)/index.html
        """
    let result = try withSeccomp("default", script)
    #expect(result.stdout == "served\n", "\(result)")
    #expect(result.status == 0)
}

@Test func aDockerProfileDenyingMkdirDeniesOnlyThat() throws {
    let profile = makeDirectory("profile") + "/no-mkdir.json"
    try """
        {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
         "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
        """.write(toFile: profile, atomically: true, encoding: .utf8)
    let result = try withSeccomp(profile, "mkdir /x; touch /y && echo touched")
    #expect(result.stderr.contains("Operation not permitted"), "\(result)")
    #expect(result.stdout == "touched\n")
    // Compiled once: the second start loads the stored BPF.
    #expect(try withSeccomp(profile, "mkdir /x 2>/dev/null || echo refused").stdout == "refused\n")
}

@Test func aBrokenProfileFailsBeforeAnythingRuns() throws {
    let dir = makeDirectory("broken")
    let marker = "/tmp/plash-test-\(getpid())-seccomp-marker"
    defer { try? FileManager.default.removeItem(atPath: marker) }
    let profiles = [
        "not json": "plash-exec: seccomp profile \(dir)/0.json: not valid JSON",
        #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["no_such_call"], "action": "SCMP_ACT_ERRNO"}]}"#:
            "plash-exec: seccomp profile \(dir)/1.json: unknown system call \"no_such_call\"",
        #"{"defaultAction": "SCMP_ACT_NOTIFY"}"#:
            "plash-exec: seccomp profile \(dir)/2.json: unsupported action \"SCMP_ACT_NOTIFY\"",
    ]
    for (index, (text, message)) in profiles.sorted(by: { $0.value < $1.value }).enumerated() {
        let path = "\(dir)/\(index).json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try withSeccomp(path, "touch \(marker)")
        #expect(result.status == 125)
        #expect(result.stderr.hasPrefix(message), "\(result)")
        #expect(result.stderr.split(separator: "\n").count == 1)
    }
    let missing = try withSeccomp(dir + "/missing.json", "touch \(marker)")
    #expect(missing.stderr == "plash-exec: seccomp profile \(dir)/missing.json: No such file or directory\n")
    #expect(!FileManager.default.fileExists(atPath: marker))
}

@Test func noNewPrivsIsSetWithAFilterAndOnRequest() throws {
    #expect(try withSeccomp("default", "grep NoNewPrivs /proc/self/status").stdout == "NoNewPrivs:\t1\n")
    #expect(try exec(["--no-new-privs", "--root", probeRoot, "--", "grep", "NoNewPrivs", "/proc/self/status"]).stdout
            == "NoNewPrivs:\t1\n")
    #expect(try exec(["--root", probeRoot, "--", "grep", "NoNewPrivs", "/proc/self/status"]).stdout == "NoNewPrivs:\t0\n")
}

/// Debian's containers-common ships the profile podman uses (Docker's, give or take);
/// scripts/test installs it.
let stockProfile = "/usr/share/containers/seccomp.json"

@Test(.enabled(if: FileManager.default.fileExists(atPath: stockProfile) || mustRun,
               "needs \(stockProfile) (apt-get install golang-github-containers-common)"))
func theStockContainersProfileRunsProgramsAndRefusesWhatItSays() throws {
    let store = makeDirectory("store")
    // Its rules for arch_prctl and modify_ldt are for Go's "amd64" and "x86"; without
    // them no static program gets its thread pointer. swapon is refused with errnoRet 1.
    let result = try withSeccomp(stockProfile, "echo ok && ls /bin/sh && swapon /bin/busybox", store: store)
    #expect(result.stdout == "ok\n/bin/sh\n", "\(result)")
    #expect(result.stderr == "swapon: /bin/busybox: Operation not permitted\n", "\(result)")
    #expect(result.signal == nil)
    // Unfiltered, swapon gets as far as the kernel, which finds the file busy.
    #expect(try exec(["--root", probeRoot, "--", "swapon", "/bin/busybox"]).stderr.contains("Text file busy"))
}

@Test func aProfileUnderWhichNoProgramCouldStartIsRefusedWithOneLine() throws {
    let store = makeDirectory("store")
    for action in ["SCMP_ACT_ERRNO", "SCMP_ACT_KILL"] {
        let profile = try writeProfile(#"{"defaultAction": "\#(action)"}"#)
        let result = try withSeccomp(profile, "true", store: store)
        #expect(result.status == 125, "\(result)")
        #expect(result.stderr == "plash-exec: seccomp profile \(profile): it blocks execve, so no program could start under it\n")
    }
    let noExit = try writeProfile("""
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["exit", "exit_group"], "action": "SCMP_ACT_ERRNO"}]}
        """)
    // Were it loaded, `true` could not exit: glibc's _exit tries again forever.
    let child = try Child(plashExec, ["--seccomp", noExit, "--root", probeRoot, "--", "true"],
                          environment: ["PLASH_DATA": store])
    let ended = waitUntil(30) {
        var info = siginfo_t()
        return waitid(P_PID, id_t(child.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info._sifields._kill.si_pid != 0
    }
    if !ended { kill(child.pid, SIGKILL) }
    let result = child.finish()
    #expect(ended, "plash-exec still ran after 30 s")
    #expect(result.stderr == "plash-exec: seccomp profile \(noExit): it blocks exit_group and exit, so no program could end under it\n")
}

@Test func aNumberOutOfRangeInAProfileNamesItsField() throws {
    let store = makeDirectory("store")
    let cases = [
        #""errnoRet": 1e30"#: "syscalls[0].errnoRet: 1e+30 is out of range (0-4294967295)",
        #""errnoRet": 70000"#: "syscalls[0].errnoRet: 70000 is not an errno (0-4095)",
        #""errnoRet": 1.5"#: "syscalls[0].errnoRet: 1.5 is not a whole number",
        #""args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]"#:
            "syscalls[0].args[0].value: -1.0 is out of range (0-18446744073709551615)",
        #""args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]"#:
            "syscalls[0].args[0].index: 6 is not an argument index (0-5)",
        #""args": [{"index": "first", "value": 1, "op": "SCMP_CMP_EQ"}]"#: "syscalls[0].args[0].index: expected a number",
    ]
    for (field, message) in cases {
        let profile = try writeProfile("""
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", \(field)}]}
            """)
        let result = try withSeccomp(profile, "true", store: store)
        #expect(result.status == 125)
        #expect(result.stderr == "plash-exec: seccomp profile \(profile): \(message)\n", "\(result)")
    }
}

@Test func plashSeccompFailsWithOneLine() throws {
    let profile = try writeProfile(#"{"defaultAction": "SCMP_ACT_ALLOW"}"#)
    let result = try run(plash, ["seccomp", profile], environment: ["PLASH_DATA": "/proc/plash-no-such-store"])
    #expect(result.status == 1)
    #expect(result.stderr == "plash: create store /proc/plash-no-such-store: No such file or directory\n", "\(result)")
}

@Test func aProfileThatNeverEndsIsRefusedInOneLine() throws {
    let environment = ["PLASH_DATA": makeDirectory("store")]
    for (program, arguments, status) in [(plash, ["seccomp", "/dev/zero"], Int32(1)),
                                         (plashExec, ["--seccomp", "/dev/zero", "--root", try busyboxRoot, "true"], 125)] {
        let (result, ended) = try runWithDeadline(program, arguments, environment: environment)
        #expect(ended, "\(arguments): read /dev/zero without end")
        #expect(result.status == status, "\(arguments): \(result)")
        #expect(result.stderr.hasSuffix("seccomp profile /dev/zero: larger than 16 MiB\n"),
                "\(arguments): \(result)")
    }
}

@Test func aProfileOfTheWrongShapeSaysWhatWasExpectedWhere() throws {
    let environment = ["PLASH_DATA": makeDirectory("store")]
    let cases = ["[]": "the profile: expected an object", "null": "the profile: expected an object",
                 #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [1]}"#: "syscalls[0]: expected an object",
                 #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {}}"#: "syscalls: expected a list"]
    for (json, message) in cases {
        let profile = try writeProfile(json)
        let result = try run(plash, ["seccomp", profile], environment: environment)
        #expect(result.status == 1 && result.stderr == "plash: seccomp profile \(profile): \(message)\n", "\(json): \(result)")
    }
}

@Test func plashExecRefusesACompiledFilterItCannotTrust() throws {
    let store = makeDirectory("store")
    let noMkdir = try writeProfile("""
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
        """)
    let allowAll = try writeProfile(#"{"defaultAction": "SCMP_ACT_ALLOW"}"#)
    func compile(_ profile: String) throws -> String {
        let result = try run(plash, ["seccomp", profile], environment: ["PLASH_DATA": store])
        #expect(result.status == 0, "\(result)")
        return result.stdout.trimmingCharacters(in: .newlines)
    }
    let bpf = try compile(noMkdir)
    #expect(try withSeccomp(noMkdir, "mkdir /x || echo refused", store: store).stdout == "refused\n")

    // Another program in its place.
    try FileManager.default.removeItem(atPath: bpf)
    try FileManager.default.copyItem(atPath: try compile(allowAll), toPath: bpf)
    let replaced = try withSeccomp(noMkdir, "mkdir /x && echo made", store: store)
    #expect(replaced.status == 125)
    #expect(replaced.stdout == "")
    #expect(replaced.stderr.hasPrefix("plash-exec: compiled seccomp profile \(bpf): its contents do not match its name"),
            "\(replaced)")

    // The real program, but others may write it, or someone else owns it.
    #expect(try compile(noMkdir) == bpf)
    chmod(bpf, 0o646)
    let writable = try withSeccomp(noMkdir, "mkdir /x && echo made", store: store)
    #expect(writable.stderr == "plash-exec: compiled seccomp profile \(bpf): others may write it (mode 646)\n", "\(writable)")
    chmod(bpf, 0o644)
    chown(bpf, 65534, 65534)
    let foreign = try withSeccomp(noMkdir, "mkdir /x && echo made", store: store)
    #expect(foreign.stderr == "plash-exec: compiled seccomp profile \(bpf): owned by uid 65534, not by this user or root\n",
            "\(foreign)")
}

@Test func theDefaultFilterRefusesIoUring() throws {
    // io_uring opens files with a mode and talks to the network past the filter.
    #expect(try withSeccomp("default", "probe uring").stdout == "EPERM\n")
    #expect(try exec(["--root", probeRoot, "--", "probe", "uring"]).stdout == "ok\n")
}

@Test func isolateKeepsItsOwnRulesUnderAProfileThatAllowsEverything() throws {
    let store = makeDirectory("store")
    let profile = try writeProfile(#"{"defaultAction": "SCMP_ACT_ALLOW"}"#)
    let dir = makeDirectory("out")
    let result = try execInThrowAwayPIDNamespace(["--isolate", "--seccomp", profile, "--bind", dir + ":/out",
                                                  "--root", probeRoot, "--", "sh", "-c", "probe uring; probe setid /out"],
                                                 environment: ["PLASH_DATA": store])
    #expect(result.stdout == "EPERM\nopen EPERM\nchmod EPERM\nfchmod EPERM\nfchmodat2 EPERM\nmknod EPERM\nopenat2 ENOSYS\n",
            "\(result)")
}
