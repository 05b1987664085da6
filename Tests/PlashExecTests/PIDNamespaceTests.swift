import Foundation
import Testing
import PlashTestSupport

// --pid-ns: plash-exec stays the PID the caller started, as a tiny init's forwarder;
// the program runs in its own PID namespace and everything it started dies with it.

@Test func inItsOwnPIDNamespaceTheProgramSeesOnlyItsContainer() throws {
    // The init is 1, the program 2, and the pipeline's processes come right after.
    let result = try inBusybox("echo $$; ps -o pid | tail -n +2 | sort -n | tail -1", options: ["--pid-ns"])
    let lines = result.stdout.split(separator: "\n")
    #expect(lines.first == "2", "\(result)")
    #expect((Int(lines.last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 99) < 10, "\(result)")
}

@Test func whenTheProgramExitsWhatItStartedDiesWithIt() throws {
    let marker = "plash-pidns-orphan-\(getpid())"
    let result = try inBusybox("sleep 1000 \(marker) 2>/dev/null & exit 4", options: ["--pid-ns"])
    #expect(result.status == 4)
    #expect(waitUntil { (try? shell("pgrep -f '\(marker)'").status) == 1 })
}

@Test func killingTheSupervisedPIDKillsTheWholeContainer() throws {
    let marker = "plash-pidns-killed-\(getpid())"
    let child = try start(["--pid-ns", "--root", busyboxRoot, "--", "sh", "-c",
                           "sleep 1000 \(marker) 2>/dev/null & echo up; exec sleep 1001"])
    #expect(child.readLine() == "up")
    kill(child.pid, SIGKILL)
    #expect(child.finish().signal == SIGKILL)
    #expect(waitUntil { (try? shell("pgrep -f '\(marker)'").status) == 1 })
}

@Test func signalsToTheSupervisedPIDReachTheProgram() throws {
    let script = """
        for s in TERM INT HUP USR1; do trap "echo $s" $s; done
        echo ready
        while :; do sleep 0.05; done
        """
    let child = try start(["--pid-ns", "--root", busyboxRoot, "--", "sh", "-c", script])
    #expect(child.readLine() == "ready")
    for signal in [SIGTERM, SIGINT, SIGHUP, SIGUSR1] {
        kill(child.pid, signal)
        #expect(child.readLine() == ["TERM", "INT", "HUP", "USR1"][[SIGTERM, SIGINT, SIGHUP, SIGUSR1].firstIndex(of: signal)!])
    }
    kill(child.pid, SIGKILL)
    _ = child.finish()
}

@Test func stopAndContinueOfTheSupervisedPIDReachTheProgram() throws {
    let child = try start(["--pid-ns", "--root", busyboxRoot, "--", "sh", "-c", "echo $$ > /dev/null; exec sleep 1000"])
    defer { kill(child.pid, SIGKILL); _ = child.finish() }
    // The program is the init's only child: find its host PID through the init.
    var program: String? = nil
    #expect(waitUntil {
        let children = (try? String(contentsOfFile: "/proc/\(child.pid)/task/\(child.pid)/children", encoding: .utf8)) ?? ""
        guard let initPID = children.split(separator: " ").first else { return false }
        let grandchildren = (try? String(contentsOfFile: "/proc/\(initPID)/task/\(initPID)/children", encoding: .utf8)) ?? ""
        program = grandchildren.split(separator: " ").first.map(String.init)
        return program != nil && (try? String(contentsOfFile: "/proc/\(program!)/cmdline", encoding: .utf8))?.hasPrefix("sleep") == true
    })
    guard let program else { return }
    kill(child.pid, SIGSTOP)
    #expect(waitUntil { processState(pid_t(program)!) == "T" })
    kill(child.pid, SIGCONT)
    #expect(waitUntil { processState(pid_t(program)!) == "S" })
}

@Test func theExitStatusAndTheKillingSignalPassThrough() throws {
    #expect(try inBusybox("exit 9", options: ["--pid-ns"]).status == 9)
    #expect(try inBusybox("kill -9 $$", options: ["--pid-ns"]).signal == SIGKILL)
}
