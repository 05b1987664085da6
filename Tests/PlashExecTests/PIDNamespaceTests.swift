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

/// A name for processes of one test (see `processes(markedWith:)`).
func uniqueMarker(_ what: String) -> String { "plash-\(what)-\(getpid())-\(UUID().uuidString.prefix(8))" }

/// A shell line that starts a process marked `marker` that would run for long, with
/// its stdio away from the test's pipes (a survivor must not keep them open).
func markedSleeper(_ marker: String) -> String { "sh -c 'sleep 1000; :' \(marker) </dev/null >/dev/null 2>&1" }

/// Kills what survived a test: the marked processes and everything they started.
func killMarked(_ markers: [String]) {
    for pid in markers.flatMap(processes(markedWith:)) {
        (descendants(of: pid) + [pid]).forEach { kill($0, SIGKILL) }
    }
}

@Test func whenTheProgramExitsWhatItStartedDiesWithIt() throws {
    let orphan = uniqueMarker("pidns-orphan")
    defer { killMarked([orphan]) }
    let child = try start(["--pid-ns", "--root", busyboxRoot, "--", "sh", "-c",
                           "\(markedSleeper(orphan)) & echo up; read x; exit 4"], stdin: .pipe)
    #expect(child.readLine() == "up")
    #expect(waitUntil { !processes(markedWith: orphan).isEmpty }, "the program's child never ran")

    child.closeStdin()   // the program exits
    let exit = child.wait(timeout: 10)
    if exit == nil { kill(child.pid, SIGKILL) }
    #expect(exit?.0 == 4, "\(String(describing: exit))")
    #expect(waitUntil { processes(markedWith: orphan).isEmpty }, "the program's child outlived it")
    killMarked([orphan])
    _ = child.finish()
}

@Test func killingTheSupervisedPIDKillsTheWholeContainer() throws {
    let orphan = uniqueMarker("pidns-killed"), program = uniqueMarker("pidns-program")
    defer { killMarked([orphan, program]) }
    let child = try start(["--pid-ns", "--root", busyboxRoot, "--", "sh", "-c",
                           "\(markedSleeper(orphan)) & echo up; exec \(markedSleeper(program))"])
    #expect(child.readLine() == "up")
    #expect(waitUntil { !processes(markedWith: orphan).isEmpty && !processes(markedWith: program).isEmpty },
            "the program and its child never both ran")

    kill(child.pid, SIGKILL)
    #expect(child.wait(timeout: 10) != nil)
    #expect(waitUntil { processes(markedWith: program).isEmpty }, "the program outlived the PID its supervisor killed")
    #expect(waitUntil { processes(markedWith: orphan).isEmpty }, "the program's child outlived the PID its supervisor killed")
    killMarked([orphan, program])
    _ = child.finish()
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
