import Foundation
import PlashTestSupport
import Testing

/// Bad or unusual build input: it gets one clear line, or works, and harms nothing.
@Suite struct BuildInputTests {
    /// Runs plash, killing it when it has not ended within `seconds`: an input that
    /// makes plash loop fails the test instead of hanging it.
    func plashWithDeadline(_ store: TestStore, _ arguments: [String], directory: String,
                           seconds: Double = 60) throws -> Finished {
        let child = try Child(plash, arguments, environment: store.environment, directory: directory)
        let ended = waitUntil(seconds) {
            var info = siginfo_t()
            return waitid(P_PID, id_t(child.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info._sifields._kill.si_pid != 0
        }
        if !ended { kill(child.pid, SIGKILL) }
        let result = child.finish()
        #expect(ended, "plash \(arguments) still ran after \(seconds) s")
        return result
    }

    func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test func anEvalFileThatIncludesItselfIsRefusedNamingTheCycle() throws {
        let store = TestStore()
        let dir = makeDirectory()
        try write("--run\ntrue\n--eval-file b\n", to: dir + "/a")
        try write("--eval-file ./a\n", to: dir + "/b")
        try write("--run true\n--eval-file self\n", to: dir + "/self")
        let cycle = try plashWithDeadline(store, ["build", "--from", "busybox", "--eval-file", "a"], directory: dir)
        #expect(cycle.status == 2)
        #expect(cycle.stderr == "plash: --eval-file ./a: it includes itself (a -> b -> ./a)\n", "\(cycle)")
        let direct = try plashWithDeadline(store, ["build", "--from", "busybox", "--eval-file", "self"], directory: dir)
        #expect(direct.status == 2)
        #expect(direct.stderr == "plash: --eval-file self: it includes itself (self -> self)\n", "\(direct)")
    }

    @Test func anEvalFileMayBeIncludedAgainAfterItWasRead() throws {
        let store = TestStore()
        let dir = makeDirectory()
        try write("--run\necho x >> /count\n", to: dir + "/once")
        try write("--eval-file once\n--eval-file once\n", to: dir + "/twice")
        let id = try store.id(["build", "--from", "busybox", "--eval-file", "twice", "--eval-file", "once"], directory: dir)
        #expect(try store.plash(["run", id, "cat", "/count"]).stdout == "x\nx\nx\n")
    }

    @Test func evalFilesNestedTooDeeplyAreRefused() throws {
        let store = TestStore()
        let dir = makeDirectory()
        for level in 0..<40 { try write("--eval-file \(level + 1)\n", to: "\(dir)/\(level)") }
        try write("--run true\n", to: "\(dir)/40")
        let result = try plashWithDeadline(store, ["build", "--from", "busybox", "--eval-file", "0"], directory: dir)
        #expect(result.status == 2)
        #expect(result.stderr == "plash: --eval-file 32: files nested more than 32 deep\n", "\(result)")
    }

    @Test func crlfPlashfilesAndEvalInputBuild() throws {
        let store = TestStore()
        let dir = makeDirectory()
        try write("--run\r\ntouch /from-file\r\n", to: dir + "/macros")
        try write("#!/usr/bin/env plash\r\n--from busybox\r\n--run touch /in-plashfile\r\n--entrypoint-script\r\nls /in-*\r\n",
                  to: dir + "/Plashfile")
        let id = try store.id(["build", "--eval-string", "--from busybox\r\n--run touch /from-string\r\n",
                               "--eval-file", "macros"], directory: dir)
        #expect(try store.plash(["run", id, "sh", "-c", "ls /from-*"]).stdout == "/from-file\n/from-string\n")
        let plashfile = try store.plash([dir + "/Plashfile"], directory: dir)
        #expect(plashfile.stdout == "/in-plashfile\n", "\(plashfile)")
    }
}
