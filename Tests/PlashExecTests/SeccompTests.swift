import Foundation
import Testing
import PlashTestSupport

/// A busybox root with the probe in it.
var probeRoot: String { get throws { try probeRootFixture.get() } }
private let probeRootFixture = Fixture {
    let root = try makeBusyboxRoot(at: makeDirectory("probe-root"))
    try copyExecutable(probe, to: root + "/bin/probe")
    return root
}

func withSeccomp(_ profile: String, _ script: String) throws -> Finished {
    try exec(["--seccomp", profile, "--root", probeRoot, "--", "sh", "-c", script])
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
        "not json": "plash-exec: seccomp profile \(dir)/0.json: not a seccomp profile",
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
