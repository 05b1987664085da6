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

@Test func whenPlashExecReturnsNothingOfTheContainerRunsAnyMore() throws {
    // Its caller may start the next container at once: a supervisor's restart, the next
    // step of a build on the same --persist directory. No process of the last one may
    // still hold that directory's lock (or anything else).
    let orphan = uniqueMarker("pidns-after")
    defer { killMarked([orphan]) }
    let persist = makeDirectory("pidns-persist") + "/upper"
    for round in 1...30 {
        let result = try exec(["--pid-ns", "--persist", persist, "--root", busyboxRoot, "--", "sh", "-c",
                               "\(markedSleeper(orphan)) & true"])
        #expect(result.status == 0, "round \(round): \(result)")
        #expect(processes(markedWith: orphan).isEmpty, "round \(round): the container's processes outlived plash-exec")
        if result.status != 0 { break }
    }
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

/// An interactive shell with job control on a real terminal (a pty) runs plash-exec
/// --pid-ns (or --isolate, which implies it) as a foreground job: ^Z must give the shell the job back, stopped; fg
/// must bring it back to the terminal; ^C must end it. Every wait has a deadline.
let jobControlScript = #"""
# An interactive shell with job control on a real terminal runs plash-exec --pid-ns
# as a foreground job; ^Z, fg and ^C must act on it as on any program.
import os, pty, select, signal, sys, time
plash_exec, root, option = sys.argv[1], sys.argv[2], sys.argv[3]
shell, terminal = pty.fork()
if shell == 0:
    os.execve("/bin/sh", ["sh", "-i"], {"PS1": "prompt$ ", "PATH": "/usr/bin:/bin", "TERM": "dumb", "ENV": ""})
transcript = b""
def expect(text, seconds=20):
    global transcript
    deadline = time.monotonic() + seconds
    while text.encode() not in transcript:
        left = deadline - time.monotonic()
        if left <= 0:
            raise SystemExit("no %r in time; the terminal showed:\n%s" % (text, transcript.decode(errors="replace")))
        if select.select([terminal], [], [], left)[0]:
            try:
                transcript += os.read(terminal, 4096)
            except OSError:
                raise SystemExit("the terminal closed before %r:\n%s" % (text, transcript.decode(errors="replace")))
    transcript = transcript[transcript.index(text.encode()) + len(text):]
def send(text):
    os.write(terminal, text.encode())
def descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % entry) as f:
                children.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
        except (OSError, ValueError, IndexError):
            pass
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
try:
    expect("prompt$ ")
    send("%s %s --root %s -- sh -c 'echo up-$((1+1)); read line; echo got $line; exec sleep 1000'\n" % (plash_exec, option, root))
    expect("up-2")
    send("\x1a")
    expect("Stopped")
    expect("prompt$ ")
    send("jobs\n")
    expect("Stopped")
    expect("prompt$ ")
    send("fg\n")
    send("hello\n")
    expect("got hello")
    send("\x03")
    expect("prompt$ ")
    send("echo status=$?\n")
    expect("status=130")
    print("ok")
finally:
    for pid in descendants(shell) + [shell]:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    os.waitpid(shell, 0)
"""#

@Test(arguments: ["--pid-ns", "--isolate"])
func atATerminalCtrlZStopsTheJobFgResumesItAndCtrlCEndsIt(option: String) throws {
    let result = try run("/usr/bin/python3", ["-c", jobControlScript, plashExec, busyboxRoot, option])
    #expect(result.status == 0 && result.stdout == "ok\n", "\(result)")
}

@Test func whenTheProgramStopsOnATerminalStopSignalTheSupervisedPIDStopsToo() throws {
    let child = try start(["--pid-ns", "--root", busyboxRoot, "--", "sh", "-c", "echo up; exec sleep 1000"])
    defer { kill(child.pid, SIGKILL); _ = child.finish() }
    #expect(child.readLine() == "up")
    kill(child.pid, SIGTSTP)
    #expect(waitUntil { processState(child.pid) == "T" }, "the supervised PID did not stop with its program")
    kill(child.pid, SIGCONT)
    #expect(waitUntil { processState(child.pid) == "S" })
}
