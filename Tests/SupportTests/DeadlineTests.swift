import Foundation
import Testing
import PlashTestSupport

/// Every wait for a process a test started ends by its deadline: a child that never
/// exits, or leaves its output open, fails the test that waits for it, in time, and is
/// killed.
@Suite struct DeadlineTests {
    /// Runs `wait`, which must record the deadline's issue. A watchdog bounds the test
    /// itself: when `wait` has not returned within `seconds` (as without the deadline), it
    /// kills `victims` (what the test started), which ends the wait, and the test fails.
    func expectDeadline(of wait: () -> Void, matching text: String, within seconds: Double = 30,
                        killing victims: [pid_t]) {
        let returned = Locked(false), fired = Locked(false)
        Thread {
            let end = Date().addingTimeInterval(seconds)
            while !returned.value && Date() < end { usleep(50_000) }
            if !returned.value {
                fired.set(true)
                victims.forEach { kill($0, SIGKILL) }
            }
        }.start()
        withKnownIssue { wait() } matching: { issue in issue.comments.contains { $0.rawValue.contains(text) } }
        returned.set(true)
        #expect(!fired.value, "the wait did not end by its deadline")
    }

    @Test(arguments: ["finish", "wait", "readLine", "feed"])
    func aChildThatNeverExitsFailsTheWaitInTimeAndIsKilled(_ how: String) throws {
        let child = try Child("/bin/sleep", ["1000"], stdin: .pipe, deadline: 1)
        expectDeadline(of: {
            switch how {
            case "finish": _ = child.finish()
            case "wait": _ = child.wait()
            case "readLine": _ = child.readLine()
            default: _ = child.finish(feeding: String(repeating: "x", count: 1 << 20))  // more than a pipe holds
            }
        }, matching: "deadline: /bin/sleep 1000: ", killing: [child.pid])
        #expect(child.finish().signal == SIGKILL)
        #expect(kill(child.pid, 0) == -1 && errno == ESRCH)
    }

    @Test func aChildWhoseOutputStaysOpenFailsTheFinishInTime() throws {
        let child = try Child("/bin/sh", ["-c", "sleep 1000 & echo $!"], deadline: 1)
        let holder = pid_t(child.readLine()) ?? 0
        defer { if holder > 0 { kill(holder, SIGKILL) } }   // the sleep this test started
        #expect(holder > 0)
        expectDeadline(of: { _ = child.finish() }, matching: "its output still open after 1.0 s", killing: [holder])
        #expect(child.finish().status == 0)
    }

    @Test func aChildThatEndsInTimeIsNoIssue() throws {
        let result = try run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"], deadline: 10)
        #expect(result.status == 3 && result.stdout == "out\n" && result.stderr == "err\n")
    }
}
