import Foundation
import PlashTestSupport
import Testing

/// Executable Plashfiles: `#!/usr/bin/env plash`, then macros.
@Suite struct PlashfileTests {
    /// Runs the Plashfile itself (the kernel reads its #! line).
    func runPlashfile(_ file: String, _ arguments: [String], stdin: String? = nil, store: TestStore) throws -> Finished {
        try runWrittenFile(file, arguments, stdin: stdin, environment: environment(store))
    }

    func environment(_ store: TestStore) -> [String: String] {
        store.environment.merging(["PATH": productsDirectory.path + ":/usr/sbin:/usr/bin:/sbin:/bin"]) { $1 }
    }

    @Test func aPlashfileRunsItsEntrypointWithItsArguments() throws {
        let store = TestStore()
        let file = makeDirectory() + "/Plashfile"
        try writeExecutable(file, """
            #!/usr/bin/env plash
            # greets
            --from busybox
            --run
            echo hello > /greeting
            --entrypoint /bin/echo
            """)
        let result = try runPlashfile(file, ["one", "two words"], store: store)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "one two words\n")
        let again = try runPlashfile(file, ["x"], store: store)
        #expect(again.stdout == "x\n")
        #expect(again.stderr == "")
    }

    @Test func aPlashfilePassesStdinAndTheExitStatus() throws {
        let store = TestStore()
        let file = makeDirectory() + "/Plashfile"
        try writeExecutable(file, """
            #!/usr/bin/env plash
            --from busybox
            --entrypoint-script
            tr a-z A-Z
            exit $1
            """)
        let result = try runPlashfile(file, ["5"], stdin: "shout\n", store: store)
        #expect(result.stdout == "SHOUT\n")
        #expect(result.status == 5)
    }

    @Test func aPlashfileWithAnUnknownMacroFailsNamingIt() throws {
        let store = TestStore()
        let file = makeDirectory() + "/Plashfile"
        try writeExecutable(file, "#!/usr/bin/env plash\n--from busybox\n--frobnicate\n")
        let result = try runPlashfile(file, [], store: store)
        #expect(result.status == 2)
        #expect(result.stderr.contains("unknown macro --frobnicate"))
        #expect(result.stdout == "")
    }

    @Test func aPathThatIsNoPlashfileGetsOneLineNamingWhy() throws {
        let store = TestStore()
        let dir = makeDirectory("no plashfile")
        try "no shebang\n--from busybox\n".write(toFile: dir + "/text", atomically: true, encoding: .utf8)
        let cases = [dir + "/missing": "No such file or directory", dir: "Is a directory",
                     dir + "/text": "not a Plashfile (its first line is not #!/usr/bin/env plash)"]
        for (path, reason) in cases {
            let result = try store.plash([path])
            #expect(result.status == 2 && result.stderr == "plash: \(path): \(reason)\n", "\(result)")
        }
    }

    @Test func evalFileReadsMacrosFromAFile() throws {
        let store = TestStore()
        let dir = makeDirectory()
        try "--run\ntouch /evaluated\n".write(toFile: dir + "/macros", atomically: true, encoding: .utf8)
        let id = try store.id(["build", "--from", "busybox", "--eval-file", "macros"], directory: dir)
        #expect(try store.plash(["run", id, "ls", "/evaluated"]).stdout == "/evaluated\n")
    }

    @Test func runStdinBuildsTheScriptReadFromStdin() throws {
        let store = TestStore()
        let result = try store.plash(["build", "--from", "busybox", "--run-stdin"], stdin: "touch /from-stdin\n")
        #expect(result.status == 0, "\(result)")
        let id = result.stdout.trimmingCharacters(in: .newlines)
        #expect(try store.plash(["run", id, "ls", "/from-stdin"]).stdout == "/from-stdin\n")
    }

    @Test func writeFileAndWriteScriptMakeFiles() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--write-file", "/etc/motd", "hi there", "it's me",
                               "--write-script", "/bin/hello", "#!/bin/sh", "echo hello"])
        #expect(try store.plash(["run", id, "cat", "/etc/motd"]).stdout == "hi there\nit's me\n")
        #expect(try store.plash(["run", id, "hello"]).stdout == "hello\n")
    }
}
