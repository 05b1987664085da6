import Foundation
import Testing
import PlashTestSupport

// plash ps, plash kill and the cgroup half of plash clean, on real containers.

/// Starts `plash run ARGUMENTS` in the background; its first line of output means it runs.
func startContainer(_ store: TestStore, _ arguments: [String]) throws -> Child {
    try Child(plash, ["run"] + arguments, environment: store.environment)
}

/// Gone, or a zombie its new parent has yet to reap.
func gone(_ pid: pid_t) -> Bool { waitUntil(3) { !isAlive(pid) } }

@Test func psListsEveryProcessOfAContainerWithItsImage() throws {
    let store = TestStore()
    let id = try store.id(["build", "--from", "busybox", "--run", "true"])
    try store.plash(["map", "web", id])
    let child = try startContainer(store, ["web", "--", "sh", "-c", "sleep 1000 >/dev/null & echo up; wait"])
    defer { _ = try? store.plash(["kill", String(child.pid), "KILL"]); _ = child.finish() }
    #expect(child.readLine() == "up")
    let listing = try store.plash(["ps"]).stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
    #expect(listing.first == ["PID", "IMAGE", "NAME", "COMMAND"])
    let mine = listing.filter { $0.first == Substring(String(child.pid)) }
    #expect(mine.first?[1] == Substring(id) && mine.first?[2] == "web", "\(listing)")
    #expect(listing.contains { $0.count >= 5 && $0[1] == Substring(id) && $0[3] == "sleep" && $0[4] == "1000" })
}

@Test func psAndLsPrintControlCharactersAsQuestionMarks() throws {
    // A container chooses its command line, a build its script: neither may break the
    // one line per process or image, nor send escape sequences to the terminal.
    let store = TestStore()
    let id = try store.id(["build", "--from", "busybox", "--run", "true # a\tb\u{1b}[31m"])
    let child = try startContainer(store, [id, "--", "sh", "-c", "echo up; sleep 1000; :", "x\ny\u{1b}[31m"])
    defer { _ = try? store.plash(["kill", String(child.pid), "KILL"]); _ = child.finish() }
    #expect(child.readLine() == "up")
    let ps = try store.plash(["ps"]).stdout
    #expect(!ps.contains("\u{1b}") && ps.split(separator: "\n").dropFirst().allSatisfy { $0.first?.isNumber == true }, "\(ps)")
    #expect(ps.contains("echo up; sleep 1000; : x?y?[31m"), "\(ps)")
    let ls = try store.plash(["ls"]).stdout
    #expect(ls.contains("true # a?b?[31m\n"), "\(ls)")
}

@Test func killEndsEveryProcessOfAnImageOrOfAPIDsContainer() throws {
    let store = TestStore()
    let id = try store.id(["build", "--from", "busybox", "--run", "true"])
    let first = try startContainer(store, [id, "--", "sh", "-c", "sleep 1000 & echo $!; wait"])
    let orphan = pid_t(first.readLine())!
    #expect(try store.plash(["kill", id]).status == 0)
    #expect(first.finish().signal == SIGTERM)
    #expect(gone(orphan))

    let second = try startContainer(store, [id, "--", "sh", "-c", "sleep 1000 & echo $!; wait"])
    let child = pid_t(second.readLine())!
    #expect(try store.plash(["kill", String(child), "-KILL"]).status == 0)
    #expect(second.finish().signal == SIGKILL)
    #expect(gone(child))
}

@Test func killOfACgroupEndsWhatIsInIt() throws {
    let store = TestStore()
    let id = try store.id(["build", "--from", "busybox", "--run", "true"])
    let name = "kill-test-\(getpid())"
    let child = try startContainer(store, ["--cgroup", name, id, "--", "sh", "-c", "echo up; exec sleep 1000"])
    #expect(child.readLine() == "up")
    #expect(try store.plash(["kill", name, "USR1"]).status == 0)
    #expect(child.finish().signal == SIGUSR1)
}

@Test func killWithNothingToKillSaysSoInOneLine() throws {
    let store = TestStore()
    _ = try store.id(["build", "--from", "busybox", "--run", "true"])
    let result = try store.plash(["kill", "1"])
    #expect(result.status == 1)
    #expect(result.stderr == "plash: no processes for 1\n")
    #expect(try store.plash(["kill", "1", "NOSUCHSIGNAL"]).status == 2)
}

@Test func cleanRemovesEmptyPlashCgroupsOnly() throws {
    let store = TestStore()
    let id = try store.id(["build", "--from", "busybox", "--run", "true"])
    let (idle, busy) = ("clean-idle-\(getpid())", "clean-busy-\(getpid())")
    #expect(try store.plash(["run", "--cgroup", idle, id, "--", "true"]).status == 0)
    let child = try startContainer(store, ["--cgroup", busy, id, "--", "sh", "-c", "echo up; exec sleep 1000"])
    defer { kill(child.pid, SIGKILL); _ = child.finish() }
    #expect(child.readLine() == "up")
    let base = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/pids/plash") ? "/sys/fs/cgroup/pids/plash" : "/sys/fs/cgroup/plash"
    // (Another test's clean may come first: only the outcome is certain.)
    #expect(try store.plash(["clean"]).status == 0)
    #expect(!FileManager.default.fileExists(atPath: "\(base)/\(idle)"))
    #expect(FileManager.default.fileExists(atPath: "\(base)/\(busy)"))
}

@Test func startsInANamedCgroupSurviveAConcurrentClean() throws {
    let store = TestStore()
    let id = try store.id(["build", "--from", "busybox", "--run", "true"])
    let name = "clean-race-\(getpid())"
    let script = """
        end=$((SECONDS + 3)); (while [ $SECONDS -lt $end ]; do '\(plash)' clean; done) &
        failures=0
        for i in $(seq 150); do '\(plashExec)' --cgroup \(name) \(id) -- true || failures=$((failures + 1)); done
        wait; echo $failures
        """
    let result = try shell(script, environment: store.environment)
    #expect(result.stdout == "0\n", "\(result)")
}
