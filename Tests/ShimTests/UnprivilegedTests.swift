import Foundation
import Testing
import PlashTestSupport

// plash-exec started by real ordinary users (setpriv), in user namespaces.

/// A busybox root with the probe and a user 1000, owned by `user` (as the images in a
/// user's own store are).
func userRoot(_ user: TestUser) throws -> String {
    let root = try makeBusyboxRoot(at: makeDirectory("user-root"))
    try copyExecutable(probe, to: root + "/bin/probe")
    try "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/:/bin/sh\n"
        .write(toFile: root + "/etc/passwd", atomically: false, encoding: .utf8)
    let owned = try shell("chown -R \(user.uid):\(user.uid) '\(root)'")
    guard owned.status == 0 else { throw SetupError("chown \(root): \(owned.stderr)") }
    return root
}

var subRoot: String { get throws { try subRootFixture.get() } }
var plainRoot: String { get throws { try plainRootFixture.get() } }
private let subRootFixture = Fixture { try userRoot(userWithSubordinateIDs) }
private let plainRootFixture = Fixture { try userRoot(userWithoutSubordinateIDs) }

@Test func anOrdinaryUsersContainerKeepsPIDStdioAndExitStatus() throws {
    let user = try userWithSubordinateIDs
    let child = try user.start(userExec, ["--root", subRoot, "--", "sh", "-c", "echo $$; read line; echo got $line >&2; exit 7"],
                               stdin: .pipe)
    #expect(child.readLine() == String(child.pid))
    _ = "hello\n".utf8.withContiguousStorageIfAvailable { write(child.stdin, $0.baseAddress, $0.count) }
    let finished = child.finish()
    #expect(finished.status == 7)
    #expect(finished.stderr == "got hello\n")

    let piped = try user.run(userExec, ["--root", subRoot, "--", "tr", "a-z", "A-Z"], stdin: "a\nb\n")
    #expect(piped.stdout == "A\nB\n")

    let sleeper = try user.start(userExec, ["--root", subRoot, "--", "sh", "-c", "echo up; exec sleep 100"])
    #expect(sleeper.readLine() == "up")
    kill(sleeper.pid, SIGTERM)
    #expect(sleeper.finish().signal == SIGTERM)
}

@Test func withSubordinateIDsChownAndSetuidWorkAndTheUserIsRootInside() throws {
    let script = """
        id -u; touch /x && chown 1000:1000 /x && stat -c %u:%g /x
        cp /bin/probe /suid && chmod 4755 /suid && probe as 1000 /suid ids
        """
    let result = try userWithSubordinateIDs.run(userExec, ["--root", subRoot, "--", "sh", "-c", script])
    #expect(result.stdout == "0\n1000:1000\nuid=1000 euid=0\n", "\(result)")
}

@Test func withoutSubordinateIDsOnlyTheUserIsMappedAndTheContainerStillRuns() throws {
    let user = try userWithoutSubordinateIDs
    let result = try user.run(userExec, ["--root", plainRoot, "--", "sh", "-c",
                                         "id -u; cat /proc/self/uid_map | tr -s ' '; echo x > /new && cat /new"])
    #expect(result.stdout == "0\n 0 \(user.uid) 1\nx\n", "\(result)")
    #expect(result.stderr == "")
}

@Test func filesWrittenIntoSharedDirectoriesBelongToTheUser() throws {
    let user = try userWithSubordinateIDs
    let cwd = makeDirectory("user-cwd", ownedBy: user)
    let name = "plash-test-\(getpid())-owner"
    defer { try? FileManager.default.removeItem(atPath: "/tmp/" + name) }
    let result = try user.run(userExec, ["--root", subRoot, "--", "sh", "-c",
                                         "touch /tmp/\(name) \"$HOME/\(name)\" in-cwd"], directory: cwd)
    #expect(result.status == 0, "\(result)")
    defer { try? FileManager.default.removeItem(atPath: user.home + "/" + name) }
    for path in ["/tmp/" + name, user.home + "/" + name, cwd + "/in-cwd"] {
        let owner = (try FileManager.default.attributesOfItem(atPath: path)[.ownerAccountID] as? NSNumber)?.uint32Value
        #expect(owner == user.uid, "\(path)")
    }
}

@Test func limitsWithoutADelegatedCgroupFailWithOneClearLine() throws {
    let hierarchy = try String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)
    let result = try userWithSubordinateIDs.run(userExec, ["--memory", "64M", "--root", subRoot, "--", "true"])
    // This host delegates no cgroup to the test user; the VM test covers delegation.
    #expect(result.status == 125, "\(hierarchy)")
    #expect(result.stderr.hasPrefix("plash-exec: cgroup /sys/fs/cgroup/"))
    #expect(result.stderr.hasSuffix("Permission denied (limits need root, or a cgroup v2 subtree delegated to this user)\n"))
}

@Test(.skippedWhenMissing(fuseMissing(forOrdinaryUsers: true)))
func fuseOverlayfsServesWhenAskedAndGoesWithTheProgram() throws {
    try requirePresent(fuseMissing(forOrdinaryUsers: true))
    let user = try userWithSubordinateIDs, root = try subRoot
    // This test's fuse-overlayfs: the one serving its root (test processes of other
    // checkouts run as the same user).
    func servers() -> [pid_t] {
        allPIDs().filter { commandLine($0).hasPrefix("/usr/bin/fuse-overlayfs ") && commandLine($0).contains(root) && isAlive($0) }
    }
    let result = try user.run(userExec, ["--root", root, "--", "sh", "-c", "grep -c ' / / .*fuse-overlayfs' /proc/self/mountinfo; echo x > /y && cat /y"],
                              environment: ["PLASH_OVERLAY": "fuse"])
    #expect(result.stdout == "1\nx\n", "\(result)")
    // The kernel signals it when the program exits; it ends a moment later.
    #expect(waitUntil(10) { servers().isEmpty }, "fuse-overlayfs outlived the program: \(servers())")
}
