import Foundation
import PlashTestSupport
import Testing

/// Signals sent to the PID a supervisor started reach the program: in place, the PID
/// is the program; with --pid-ns, it is plash-exec, which passes them on.
@Suite struct SignalTests {
    /// A shell that records each signal it traps in /log/signals, and survives them.
    static let trapper = """
        for s in TERM INT HUP USR1; do trap "echo $s >> /log/signals" $s; done
        echo ready >> /log/signals
        while :; do sleep 0.05; done
        """

    /// Starts the trapper with `plash run` (and `options`); returns it and its log file.
    static func start(_ store: TestStore, _ options: [String]) throws -> (Child, String) {
        let logs = makeDirectory("signals")
        let id = try store.id(["build", "--from", "busybox"])
        let child = try Child(plash, ["run", "--bind", "\(logs):/log"] + options + [id, "--", "sh", "-c", trapper],
                              environment: store.environment)
        return (child, logs + "/signals")
    }

    static func lines(_ file: String) -> [String] {
        ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    @Test(arguments: [[], ["--pid-ns"]])
    func termIntHupAndUsr1ReachTheProgram(options: [String]) throws {
        let (child, log) = try Self.start(TestStore(), options)
        defer { kill(child.pid, SIGKILL); _ = child.finish() }
        #expect(waitUntil { Self.lines(log) == ["ready"] })
        for (signal, name) in [(SIGTERM, "TERM"), (SIGINT, "INT"), (SIGHUP, "HUP"), (SIGUSR1, "USR1")] {
            kill(child.pid, signal)
            #expect(waitUntil { Self.lines(log).last == name }, "\(name) in \(Self.lines(log))")
        }
        #expect(Self.lines(log) == ["ready", "TERM", "INT", "HUP", "USR1"])
        #expect(isAlive(child.pid))
    }

    @Test(arguments: [[], ["--pid-ns"]])
    func stopAndContStopAndResumeTheProgram(options: [String]) throws {
        let (child, log) = try Self.start(TestStore(), options)
        defer { kill(child.pid, SIGKILL); _ = child.finish() }
        #expect(waitUntil { Self.lines(log) == ["ready"] })
        // In place the program is the PID; with --pid-ns it is the shell below the init.
        let program = options.isEmpty ? child.pid
            : try #require(descendants(of: child.pid).first { commandLine($0).hasPrefix("sh -c") })

        kill(child.pid, SIGSTOP)
        #expect(waitUntil { processState(program) == "T" })
        kill(child.pid, SIGCONT)
        #expect(waitUntil { processState(program).map { "SR".contains($0) } == true })
        #expect(waitUntil { processState(child.pid).map { "SR".contains($0) } == true })
    }
}
