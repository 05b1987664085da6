import Foundation
import Testing
import PlashTestSupport

// Resource limits through a real cgroup of this host (v1 or v2, whichever it has);
// CgroupV2Tests runs the same checks in a VM with a pure v2 hierarchy.

/// A cgroup name no other test uses.
func cgroupName(_ test: String) -> String { "test-\(getpid())-\(test)" }

/// Ends whatever a test left in its cgroup, using plash-exec's own takeover.
func emptyCgroup(_ name: String) {
    _ = try? exec(["--cgroup", name, "--root", busyboxRoot, "--", "true"])
}

// Values are read from inside the container, while its cgroup exists for sure
// (`plash clean`, tested in parallel, removes empty plash cgroups).

@Test func aProgramOverItsMemoryLimitIsKilledAndTheLimitReadsBack() throws {
    let name = cgroupName("memory")
    let limit = "cat /sys/fs/cgroup/memory/plash/\(name)/memory.limit_in_bytes 2>/dev/null"
        + " || cat /sys/fs/cgroup/plash/\(name)/memory.max"
    let result = try exec(["--cgroup", name, "--memory", "64M", "--root", busyboxRoot, "--", "sh", "-c",
                           "\(limit); exec dd if=/dev/zero of=/dev/null bs=200M count=1"])
    #expect(result.signal == SIGKILL, "\(result)")
    #expect(result.stdout == "\(64 << 20)\n")
    #expect(try inBusybox("echo alive").stdout == "alive\n")
}

@Test func aMemoryLimitWithAFractionIsWrittenInBytes() throws {
    let name = cgroupName("memory-fraction")
    let limit = "cat /sys/fs/cgroup/memory/plash/\(name)/memory.limit_in_bytes 2>/dev/null"
        + " || cat /sys/fs/cgroup/plash/\(name)/memory.max"
    let result = try exec(["--cgroup", name, "--memory", "1.5G", "--root", busyboxRoot, "--", "sh", "-c", limit])
    #expect(result.stdout == "\(3 << 29)\n", "\(result)")
}

@Test func theNextContainerWithLimitsRemovesTheEmptyPidCgroupsOfEndedContainersOfItsStoreOnly() throws {
    let store = TestStore()
    _ = try store.id(["import", "busybox"])
    // v1: the memory hierarchy's; v2: the one hierarchy's.
    let bases = ["/sys/fs/cgroup/memory/plash", "/sys/fs/cgroup/plash"]
    let exists = { (name: String) in bases.contains { FileManager.default.fileExists(atPath: $0 + "/" + name) } }
    let withLimits = ["--memory", "64M", "--root", try busyboxRoot, "--", "sh", "-c", "echo $$"]
    let first = try run(plashExec, withLimits, environment: store.environment)
    let ended = "pid-" + first.stdout.trimmingCharacters(in: .newlines)
    #expect(first.status == 0 && exists(ended), "\(first)")
    let base = try #require(bases.first { FileManager.default.fileExists(atPath: $0 + "/" + ended) })
    // Not recorded by this store (another's, or made by hand): never touched. A live
    // PID's (this test process's): its plash-exec could be about to join it.
    let unrecorded = "pid-\(Int32.max - 7)", live = "pid-\(getpid())"
    for name in [unrecorded, live] { #expect(mkdir(base + "/" + name, 0o755) == 0) }
    defer { for name in [unrecorded, live] { rmdir(base + "/" + name) } }
    FileManager.default.createFile(atPath: store.data + "/cgroups/" + live, contents: nil)
    let second = try run(plashExec, withLimits, environment: store.environment)
    #expect(second.status == 0, "\(second)")
    #expect(!exists(ended) && !FileManager.default.fileExists(atPath: store.data + "/cgroups/" + ended))
    #expect(exists(unrecorded) && exists(live))
    #expect(try store.plash(["clean"]).status == 0)
}

@Test func withPidNsAProgramTheMemoryLimitKilledIsNamedInOneLineAndAnotherKillIsNot() throws {
    let options = ["--pid-ns", "--cgroup", cgroupName("oom"), "--memory", "16M", "--root", try busyboxRoot, "--", "sh", "-c"]
    let oom = try exec(options + ["exec dd if=/dev/zero of=/dev/null bs=64M count=1"])
    #expect(oom.signal == SIGKILL && oom.stderr == "plash-exec: sh: killed by the memory limit (--memory 16M)\n", "\(oom)")
    let killed = try exec(options + ["kill -KILL $$"])
    #expect(killed.signal == SIGKILL && killed.stderr == "", "\(killed)")
    emptyCgroup(cgroupName("oom"))
}

@Test func aPidsLimitMakesForkFailAfterAboutThatMany() throws {
    let result = try exec(["--cgroup", cgroupName("pids"), "--pids", "10", "--root", probeRoot, "--", "probe", "fork", "50"])
    let started = try #require(Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(result)")
    #expect((8...9).contains(started), "\(started) of 50 children started")
}

/// The CPU time a busy loop gets under --cpus 0.5 depends on what else runs (the whole
/// suite, on two cores): bench/cpu-limit measures it. Here: the quota is written, and
/// the kernel throttles the loop.
@Test func halfACPUIsWrittenAsAQuotaAndABusyLoopIsThrottled() throws {
    let name = cgroupName("cpus")
    let v1 = "/sys/fs/cgroup/cpu/plash/\(name)", v2 = "/sys/fs/cgroup/plash/\(name)"
    func read(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    func throttled() -> Int? {
        let stat = read(v1 + "/cpu.stat") ?? read(v2 + "/cpu.stat") ?? ""
        return stat.split(separator: "\n").first { $0.hasPrefix("nr_throttled ") }.flatMap { Int($0.dropFirst(13)) }
    }
    let child = try start(["--cgroup", name, "--cpus", "0.5", "--root", busyboxRoot, "--", "sh", "-c",
                           "echo up; while :; do :; done"])
    defer { kill(child.pid, SIGKILL); _ = child.finish(); removeCgroup(name) }
    #expect(child.readLine() == "up")
    let limit = read(v1 + "/cpu.cfs_quota_us").map { "\($0) \(read(v1 + "/cpu.cfs_period_us") ?? "?")" } ?? read(v2 + "/cpu.max")
    #expect(limit == "50000 100000")
    #expect(waitUntil(30) { (throttled() ?? 0) > 0 }, "nr_throttled \(String(describing: throttled()))")
}

@Test func restartingInTheSameCgroupKillsWhatTheEarlierInstanceLeft() throws {
    let name = cgroupName("restart")
    defer { emptyCgroup(name) }
    let first = try exec(["--cgroup", name, "--root", busyboxRoot, "--", "sh", "-c", "sleep 1000 >/dev/null 2>&1 & echo $!"])
    let orphan = try #require(pid_t(first.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
    #expect(kill(orphan, 0) == 0, "the orphan runs before the restart")
    let second = try exec(["--cgroup", name, "--root", busyboxRoot, "--", "cat", "/proc/\(orphan)/stat"])
    // Gone, or a zombie that its new parent has yet to reap: either way no longer running.
    let state = second.stdout.split(separator: ")").last?.split(separator: " ").first
    #expect(second.status != 0 || state == "Z", "\(second)")
}

@Test func limitsWithoutANameGetACgroupOfTheirOwn() throws {
    let result = try exec(["--pids", "100", "--root", busyboxRoot, "--", "cat", "/proc/self/cgroup"])
    #expect(result.stdout.contains("/plash/pid-"), "\(result)")
}

@Test func badLimitsAreUsageErrors() throws {
    for arguments in [["--memory", "lots"], ["--pids", "0"], ["--cpus", "x"], ["--cgroup", "../escape"]] {
        let result = try exec(arguments + ["--root", busyboxRoot, "--", "true"])
        #expect(result.status == 125)
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result)")
    }
}

@Test func aMemoryLimitTooSmallToStartAnythingIsRefusedWithOneLine() throws {
    for size in ["1", "100", "512K"] {
        let result = try exec(["--memory", size, "--root", busyboxRoot, "--", "true"])
        #expect(result.status == 125 && result.signal == nil, "\(size): \(result)")
        #expect(result.stderr == "plash-exec: --memory \(size): below the minimum of 1M (a size without a unit is bytes)\n")
    }
    #expect(try exec(["--memory", "1M", "--root", busyboxRoot, "--", "sh", "-c", "echo ran"]).stdout == "ran\n")
}

/// Forks 50 children, then reads 200 MB into one buffer: "STARTED allocated", or
/// "STARTED refused" when the memory limit killed dd.
let forkAndAllocate = "echo $(probe fork 50) $(dd if=/dev/zero of=/dev/null bs=200M count=1 2>/dev/null && echo allocated || echo refused)"

@Test func aContainerStartedAgainInItsCgroupWithoutTheEarlierLimitsRunsWithoutThem() throws {
    let name = cgroupName("relimit")
    defer { emptyCgroup(name) }
    let limited = try exec(["--cgroup", name, "--memory", "64M", "--pids", "10", "--root", probeRoot, "--",
                            "sh", "-c", forkAndAllocate])
    let words = limited.stdout.split(separator: " ")
    #expect(words.count == 2 && (5...9).contains(Int(words[0]) ?? 0) && words[1] == "refused\n", "\(limited)")
    let unlimited = try exec(["--cgroup", name, "--root", probeRoot, "--", "sh", "-c", forkAndAllocate])
    #expect(unlimited.stdout == "50 allocated\n", "\(unlimited)")
}

/// cgroup v1 (or hybrid) with memory and pids hierarchies, as this host has.
let v1MemoryAndPids = ["memory", "pids"].allSatisfy { FileManager.default.fileExists(atPath: "/sys/fs/cgroup/\($0)/cgroup.procs") }

@Test(.enabled(if: v1MemoryAndPids || mustRun, "needs cgroup v1 with memory and pids hierarchies at /sys/fs/cgroup"))
func onCgroupV1WithoutAPidsHierarchyARestartedContainerDropsTheEarlierMemoryAndCPULimits() throws {
    // Without pids, plash-exec joins every hierarchy of plash/NAME, memory and cpu too:
    // each start must write their limits, "unlimited" when not given. The pids hierarchy
    // is unmounted in a mount namespace of the test's own; the host keeps it.
    let name = cgroupName("v1-no-pids")
    // The CPU quota of the cgroup it is in, then whether 200 MB fit in its memory.
    let quotaAndAllocation = """
        cat /sys/fs/cgroup/cpu$(sed -n 's/^[0-9]*:cpu:\\(.*\\)/\\1/p' /proc/self/cgroup)/cpu.cfs_quota_us
        dd if=/dev/zero of=/dev/null bs=200M count=1 2>/dev/null && echo allocated || echo refused
        """
    func start(_ limits: [String]) throws -> Finished {
        try run("/usr/bin/unshare", ["--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                                     "umount /sys/fs/cgroup/pids && exec \"$@\"", "sh", plashExec, "--cgroup", name]
                + limits + ["--root", try probeRoot, "--", "sh", "-c", quotaAndAllocation])
    }
    defer { emptyCgroup(name) }
    let limited = try start(["--memory", "64M", "--cpus", "0.5"])
    #expect(limited.stdout == "50000\nrefused\n", "\(limited)")
    let unlimited = try start([])
    #expect(unlimited.stdout == "-1\nallocated\n", "\(unlimited)")
}
