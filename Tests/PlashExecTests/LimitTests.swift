import Foundation
import Testing
import PlashTestSupport

// Resource limits through a real cgroup of this host (v1 or v2, whichever it has);
// CgroupV2Tests runs the same checks in a VM with a pure v2 hierarchy.

/// A cgroup name no other test uses.
func cgroupName(_ test: String) -> String { "test-\(getpid())-\(test)" }

/// The directory of plash/NAME for `controller` on this host.
func cgroupDirectory(_ name: String, controller: String) -> String {
    let v1 = "/sys/fs/cgroup/\(controller)/plash/\(name)"
    return FileManager.default.fileExists(atPath: "/sys/fs/cgroup/\(controller)") ? v1 : "/sys/fs/cgroup/plash/\(name)"
}

func readNumber(_ path: String) -> Int? {
    (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int($0.split(separator: " ")[0].trimmingCharacters(in: .whitespacesAndNewlines)) }
}

/// Ends whatever a test left in its cgroup, using plash-exec's own takeover.
func emptyCgroup(_ name: String) {
    _ = try? exec(["--cgroup", name, "--root", busyboxRoot, "--", "true"])
}

@Test func aProgramOverItsMemoryLimitIsKilledAndTheLimitReadsBack() throws {
    let name = cgroupName("memory")
    let result = try exec(["--cgroup", name, "--memory", "64M", "--root", busyboxRoot, "--",
                           "dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"])
    #expect(result.signal == SIGKILL, "\(result)")
    let dir = cgroupDirectory(name, controller: "memory")
    let limit = readNumber(dir + "/memory.limit_in_bytes") ?? readNumber(dir + "/memory.max")
    #expect(limit == 64 << 20)
    #expect(try inBusybox("echo alive").stdout == "alive\n")
}

@Test func aPidsLimitMakesForkFailAfterAboutThatMany() throws {
    let result = try exec(["--cgroup", cgroupName("pids"), "--pids", "10", "--root", probeRoot, "--", "probe", "fork", "50"])
    let started = try #require(Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(result)")
    #expect((8...9).contains(started), "\(started) of 50 children started")
}

@Test func halfACPUGivesABusyLoopAboutHalfItsTime() throws {
    let name = cgroupName("cpus")
    let result = try exec(["--cgroup", name, "--cpus", "0.5", "--root", busyboxRoot, "--",
                           "timeout", "2", "sh", "-c", "while :; do :; done"])
    #expect(result.status != 0)
    let v1 = cgroupDirectory(name, controller: "cpuacct") + "/cpuacct.usage"
    let seconds: Double
    if let nanoseconds = readNumber(v1) {
        seconds = Double(nanoseconds) / 1e9
    } else {
        let stat = try String(contentsOfFile: cgroupDirectory(name, controller: "cpu") + "/cpu.stat", encoding: .utf8)
        let usage = stat.split(separator: "\n").first { $0.hasPrefix("usage_usec") }!.split(separator: " ")[1]
        seconds = Double(usage)! / 1e6
    }
    #expect(seconds > 0.75 && seconds < 1.25, "used \(seconds) s of CPU in 2 s")
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
