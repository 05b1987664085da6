import Foundation
import Testing
import PlashTestSupport
@testable import PlashExec
import PlashSystem

// The options operators reach for first (--user, --cap-drop/--cap-add, --read-only,
// --tmpfs, --dev, --unshare-ipc, --env-file, --bind-try), each proved from inside, as
// root and as ordinary users.

/// The probe root with a user `web` (33) in the groups audio and video.
func operatorRoot(owner: TestUser? = nil) throws -> String {
    let root = try makeBusyboxRoot(at: makeDirectory("operator-root"))
    try copyExecutable(probe, to: root + "/bin/probe")
    try "root:x:0:0:root:/root:/bin/sh\nweb:x:33:33:web:/var/www:/bin/sh\n"
        .write(toFile: root + "/etc/passwd", atomically: false, encoding: .utf8)
    try "root:x:0:\nweb:x:33:\naudio:x:29:web,other\nvideo:x:44:web\nstaff:x:50:other\n"
        .write(toFile: root + "/etc/group", atomically: false, encoding: .utf8)
    if let owner {
        let owned = try shell("chown -R \(owner.uid):\(owner.uid) '\(root)'")
        guard owned.status == 0 else { throw SetupError("chown \(root): \(owned.stderr)") }
    }
    return root
}

private let rootFixture = Fixture { try operatorRoot() }
private let subRootFixture = Fixture { try operatorRoot(owner: userWithSubordinateIDs) }
private let plainRootFixture = Fixture { try operatorRoot(owner: userWithoutSubordinateIDs) }

/// plash-exec OPTIONS --root (a root for the caller) -- sh -c SCRIPT, as root or as `user`.
func operatorRun(_ options: [String], _ script: String, as user: TestUser? = nil) throws -> Finished {
    guard let user else { return try exec(options + ["--root", rootFixture.get(), "--", "sh", "-c", script]) }
    let root = try user.name == userWithSubordinateIDs.name ? subRootFixture.get() : plainRootFixture.get()
    return try user.run(userExec, options + ["--root", root, "--", "sh", "-c", script])
}

let everyCaller: [String] = ["root", "user with subordinate ids", "user without"]
func caller(_ name: String) throws -> TestUser? {
    switch name {
    case "root": return nil
    case "user with subordinate ids": return try userWithSubordinateIDs
    default: return try userWithoutSubordinateIDs
    }
}

// --user

@Test func userRunsTheProgramAsThatUserWithItsGroupsAndHomeFromTheImage() throws {
    let result = try operatorRun(["--user", "web"], "probe ids; id -g; id -G; echo $HOME; grep CapEff /proc/self/status")
    #expect(result.stdout == "uid=33 euid=33\n33\n33 29 44\n/var/www\nCapEff:\t0000000000000000\n", "\(result)")
}

@Test func userTakesAUIDAndAGroup() throws {
    let result = try operatorRun(["--user", "1234:video"], "id -u; id -G")
    #expect(result.stdout == "1234\n44\n", "\(result)")
}

@Test func userWorksAfterEveryCapabilityIsDroppedAndUnderTheSeccompFilter() throws {
    // The switch needs CAP_SETUID, which --cap-drop ALL takes away: the user comes first.
    // The filter comes after it: it applies to the program (Seccomp: 2).
    let result = try operatorRun(["--cap-drop", "ALL", "--seccomp", "default", "--user", "web"],
                                 "id -u; grep -E '^(CapBnd|Seccomp):' /proc/self/status | tr '\\t\\n' '  '")
    #expect(result.stdout == "33\nCapBnd: 0000000000000000 Seccomp: 2 ", "\(result)")
}

@Test func anUnknownUserIsOneLineAndStatus125() throws {
    let result = try operatorRun(["--user", "nobody"], "echo ran")
    #expect(result.status == 125 && result.stdout == "", "\(result)")
    #expect(result.stderr == "plash-exec: --user nobody: no user nobody in the image's /etc/passwd\n", "\(result)")
}

@Test func userRefusesAPasswdThatIsNotARegularFileInsteadOfHanging() throws {
    let root = try operatorRoot()
    unlink(root + "/etc/passwd")
    #expect(mkfifo(root + "/etc/passwd", 0o644) == 0)
    let child = try start(["--user", "web", "--root", root, "--", "true"])
    guard child.wait(timeout: 10) != nil else {
        kill(child.pid, SIGKILL)
        _ = child.finish()
        Issue.record("plash-exec --user blocked on a FIFO /etc/passwd")
        return
    }
    let result = child.finish()
    #expect(result.status == 125 && result.stderr == "plash-exec: --user: /etc/passwd in the image is not a regular file\n",
            "\(result)")
}

@Test func anOrdinaryUserWithSubordinateIDsRunsAsAnyUserOfTheImage() throws {
    let result = try operatorRun(["--user", "web"], "id -u; id -G", as: try userWithSubordinateIDs)
    #expect(result.stdout == "33\n33 29 44\n", "\(result)")
}

@Test func anOrdinaryUserWithoutSubordinateIDsIsRootInsideOnlyAndToldWhy() throws {
    let user = try userWithoutSubordinateIDs
    let refused = try operatorRun(["--user", "web"], "echo ran", as: user)
    #expect(refused.status == 125 && refused.stdout == "", "\(refused)")
    #expect(refused.stderr.hasPrefix("plash-exec: --user web: uid 33 or gid 33 is not mapped") && refused.stderr.contains("/etc/subuid"),
            "\(refused)")
    let root = try operatorRun(["--user", "root"], "id -u", as: user)
    #expect(root.stdout == "0\n", "\(root)")
}

// --cap-drop, --cap-add

/// The capability sets of a process, from its /proc/self/status lines.
func capabilitySets(_ text: String) -> (effective: UInt64, bounding: UInt64)? {
    func set(_ name: String) -> UInt64? {
        text.split(separator: "\n").first { $0.hasPrefix(name + ":") }
            .flatMap { UInt64($0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces), radix: 16) }
    }
    guard let effective = set("CapEff"), let bounding = set("CapBnd") else { return nil }
    return (effective, bounding)
}

@Test(arguments: everyCaller)
func capDropTakesTheCapabilityAwayAndCapAddKeepsOne(_ name: String) throws {
    // CAP_DAC_OVERRIDE (bit 1) is what lets root inside write to a file of mode 000.
    let script = "touch /f; chmod 0 /f; (echo x > /f) 2>/dev/null && echo written; grep -E '^Cap(Eff|Bnd)' /proc/self/status"
    let full = try operatorRun([], script, as: try caller(name))
    let dropped = try operatorRun(["--cap-drop", "dac_override"], script, as: try caller(name))
    let fullSets = try #require(capabilitySets(full.stdout), "\(full)")
    let droppedSets = try #require(capabilitySets(dropped.stdout), "\(dropped)")
    #expect(full.stdout.hasPrefix("written\n") && dropped.stdout.hasPrefix("CapEff:"), "\(full) \(dropped)")
    #expect(droppedSets.effective == fullSets.effective & ~2 && droppedSets.bounding == fullSets.bounding & ~2)

    let onlyOne = try operatorRun(["--cap-drop", "ALL", "--cap-add", "CAP_DAC_OVERRIDE"], script, as: try caller(name))
    #expect(onlyOne.stdout == "written\nCapEff:\t0000000000000002\nCapBnd:\t0000000000000002\n", "\(onlyOne)")
}

@Test func capAddRestoresACapabilityThatIsolateDrops() throws {
    let result = try execInThrowAwayPIDNamespace(["--isolate", "--cap-add", "sys_admin", "--root", probeRoot, "--",
                                                  "sh", "-c", "grep CapBnd /proc/self/status"])
    let expected = packageManagerCapabilities.reduce(UInt64(1) << 21) { $0 | 1 << UInt64($1) }
    #expect(result.stdout == "CapBnd:\t" + String(format: "%016llx", expected) + "\n", "\(result)")
}

// --read-only, --tmpfs

@Test(arguments: everyCaller)
func readOnlyRootRefusesWritesButATmpfsTakesThem(_ name: String) throws {
    let script = "touch /x 2>/dev/null || echo read-only; touch /scratch/y && stat -c '%a %n' /scratch /scratch/y; "
        + "grep ' /scratch ' /proc/self/mountinfo | grep -c ' - tmpfs '"
    let result = try operatorRun(["--read-only", "--tmpfs", "/scratch"], script, as: try caller(name))
    #expect(result.stdout == "read-only\n1777 /scratch\n644 /scratch/y\n1\n", "\(result)")
}

@Test func withoutReadOnlyTheRootIsWritable() throws {
    let result = try operatorRun([], "touch /x && echo written")
    #expect(result.stdout == "written\n", "\(result)")
}

// --dev, --unshare-ipc

@Test(arguments: everyCaller)
func devGivesAMinimalDevWithItsOwnPts(_ name: String) throws {
    let script = "ls /dev | tr '\\n' ' '; echo; echo x > /dev/null && head -c 4 /dev/zero | wc -c; "
        + "grep ' /dev/pts ' /proc/self/mountinfo | grep -c newinstance || grep -c ' /dev/pts ' /proc/self/mountinfo"
    let result = try operatorRun(["--dev"], script, as: try caller(name))
    #expect(result.stdout.hasPrefix("fd full null ptmx pts random shm stderr stdin stdout tty urandom zero \n4\n"), "\(result)")
}

@Test(arguments: everyCaller)
func unshareIPCGivesItsOwnIPCNamespace(_ name: String) throws {
    let host = readLink("/proc/self/ns/ipc") ?? ""
    let shared = try operatorRun([], "readlink /proc/self/ns/ipc", as: try caller(name))
    let own = try operatorRun(["--unshare-ipc"], "readlink /proc/self/ns/ipc", as: try caller(name))
    #expect(shared.stdout == host + "\n", "\(shared)")
    #expect(own.status == 0 && own.stdout.hasPrefix("ipc:[") && own.stdout != host + "\n", "\(own)")
}

// --env-file, --bind-try

@Test func envFileSetsEachLineAndSkipsCommentsAndEmptyLines() throws {
    let file = makeDirectory("env") + "/env"
    try "A=1\n# a comment\n\nB=two words = three\r\nPLASH_PASSED\nC=\n".write(toFile: file, atomically: false, encoding: .utf8)
    let result = try exec(["--env-file", file, "--env", "A=2", "--root", busyboxRoot, "--", "sh", "-c",
                           "echo \"$A|$B|$PLASH_PASSED|${C-unset}|\""], environment: ["PLASH_PASSED": "yes"])
    #expect(result.stdout == "2|two words = three|yes||\n", "\(result)")
}

@Test func aMissingEnvFileIsOneLineAndStatus125() throws {
    let result = try exec(["--env-file", "/nonexistent/env", "--root", busyboxRoot, "--", "true"])
    #expect(result.status == 125 && result.stderr == "plash-exec: --env-file /nonexistent/env: No such file or directory\n",
            "\(result)")
}

@Test(arguments: everyCaller)
func bindTrySkipsAMissingSourceAndBindsAPresentOne(_ name: String) throws {
    let dir = makeDirectory("bind-try")
    try "here\n".write(toFile: dir + "/file", atomically: false, encoding: .utf8)
    chmod(dir, 0o755)
    chmod(dir + "/file", 0o644)
    let result = try operatorRun(["--bind-try", dir + "/missing:/gone", "--bind-try", dir + "/file:/present"],
                                 "cat /present; test -e /gone || echo skipped", as: try caller(name))
    #expect(result.stdout == "here\nskipped\n", "\(result)")
    let strict = try operatorRun(["--bind", dir + "/missing:/gone"], "true", as: try caller(name))
    #expect(strict.status == 125, "\(strict)")
}
