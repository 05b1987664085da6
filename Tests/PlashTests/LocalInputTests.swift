import Foundation
import PlashTestSupport
import Testing

/// Hostile input from the caller's own machine: FIFOs and devices where a file is
/// expected, pipes, scripts past the argument limit, symlinks and names that are not
/// UTF-8. Whatever could wait forever runs under a deadline, so a regression fails
/// instead of hanging the suite.
@Suite struct LocalInputTests {
    /// A FIFO that nobody writes to, in a fresh directory.
    func makeFIFO(_ name: String = "fifo") throws -> String {
        let path = makeDirectory("fifo") + "/" + name
        guard mkfifo(path, 0o644) == 0 else { throw SetupError("mkfifo \(path): \(errno)") }
        return path
    }

    // MARK: FIFOs and devices

    @Test func anEnvFileThatNeverEndsFailsInsteadOfFillingTheMemory() throws {
        // Bounded here too (1 GiB of address space, 20 s), should the bound in plash-exec go.
        let result = try run("/bin/sh", ["-c", "ulimit -v 1048576; exec timeout -s KILL 20 \"$@\"", "sh",
                                         plashExec, "--env-file", "/dev/zero", "--root", try busyboxRoot, "--", "/bin/true"])
        #expect(result.status == 125 && result.stderr.split(separator: "\n").count == 1, "\(result)")
    }

    @Test func macroTextThatNeverEndsFailsInsteadOfFillingTheMemory() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        // Bounded here too (1 GiB of address space, 20 s), should the bound in plash go.
        for redirect in ["--eval-file /dev/zero", "--run-stdin < /dev/zero", "--eval-stdin < /dev/zero"] {
            let result = try shell("ulimit -v 1048576; exec timeout -s KILL 20 '\(plash)' build --from busybox \(redirect)",
                                   environment: store.environment)
            #expect(result.status == 1 && result.stderr.split(separator: "\n").count == 1, "\(redirect): \(result)")
        }
    }

    @Test func aFIFOAsTheIdCounterIsRefusedAndNoImageIsMade() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let before = store.indexedIDs
        try FileManager.default.removeItem(atPath: store.data + "/counter")
        #expect(mkfifo(store.data + "/counter", 0o644) == 0)
        let (result, ended) = try runWithDeadline(plash, ["build", "--from", "busybox", "--run", "true"],
                                                  environment: store.environment, seconds: 20)
        #expect(ended && result.status == 1, "\(result)")
        #expect(store.indexedIDs == before)
    }

    @Test func aFIFOAsACompiledSeccompProgramIsRefused() throws {
        let store = TestStore()
        let profile = makeDirectory("profile") + "/p.json"
        try #"{"defaultAction": "SCMP_ACT_ALLOW"}"#.write(toFile: profile, atomically: true, encoding: .utf8)
        let compiled = try store.id(["seccomp", profile])
        try FileManager.default.removeItem(atPath: compiled)
        #expect(mkfifo(compiled, 0o644) == 0)
        let (result, ended) = try runWithDeadline(plashExec, ["--seccomp", profile, "--root", try busyboxRoot, "--", "/bin/true"],
                                                  environment: store.environment, seconds: 20)
        #expect(ended && result.status == 125, "\(result)")
    }

    @Test func aFIFOGivenAsAPlashfileIsRefused() throws {
        let store = TestStore()
        let fifo = try makeFIFO()
        let (result, ended) = try runWithDeadline(plash, [fifo], environment: store.environment, seconds: 20)
        #expect(ended && result.status == 2 && result.stderr.split(separator: "\n").count == 1, "\(result)")
    }

    @Test func aSeccompProfileFromAPipeIsCompiledAndLoaded() throws {
        let store = TestStore()
        let profile = makeDirectory("profile") + "/p.json"
        try #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}"#
            .write(toFile: profile, atomically: true, encoding: .utf8)
        let command = "exec '\(plashExec)' --seccomp <(cat '\(profile)') --root '\(try busyboxRoot)' -- /bin/"
        let allowed = try shell(command + "true", environment: store.environment)
        #expect(allowed.status == 0, "\(allowed)")
        // Loaded, not only compiled: what it denies fails.
        #expect(try shell(command + "pwd", environment: store.environment).status != 0)
        #expect(try shell("'\(plashExec)' --root '\(try busyboxRoot)' -- /bin/pwd").status == 0)
    }

    @Test func plashSeccompDefaultSaysTheBuiltInFilterNeedsNoCompiling() throws {
        let result = try TestStore().plash(["seccomp", "default"])
        #expect(result.status == 2, "\(result)")
        #expect(result.stderr.hasPrefix("plash: seccomp default: the built-in filter needs no compiling")
                && result.stderr.split(separator: "\n").count == 1, "\(result)")
    }

    // MARK: --hash-path

    func hashPathBuild(_ store: TestStore, _ path: String, directory: String) throws -> String {
        try store.id(["build", "--from", "busybox", "--hash-path", path, "--run", "true"], directory: directory)
    }

    @Test func hashPathOfASymlinkHashesTheFileItLeadsTo() throws {
        let store = TestStore()
        let dir = makeDirectory("hash-link")
        try "one".write(toFile: dir + "/target", atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: "target")
        let first = try hashPathBuild(store, "link", directory: dir)
        try "two".write(toFile: dir + "/target", atomically: false, encoding: .utf8)
        #expect(try hashPathBuild(store, "link", directory: dir) != first)
    }

    @Test func changingTheTargetOfASymlinkInsideAHashPathDirectoryGivesANewLayer() throws {
        let store = TestStore()
        let dir = makeDirectory("hash-link-inside")
        try FileManager.default.createDirectory(atPath: dir + "/tree", withIntermediateDirectories: true)
        try "one".write(toFile: dir + "/outside", atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: dir + "/tree/link", withDestinationPath: "../outside")
        // A link back up the tree is walked once, not forever.
        try FileManager.default.createSymbolicLink(atPath: dir + "/tree/up", withDestinationPath: "..")
        let first = try hashPathBuild(store, "tree", directory: dir)
        #expect(try hashPathBuild(store, "tree", directory: dir) == first)
        try "two".write(toFile: dir + "/outside", atomically: false, encoding: .utf8)
        #expect(try hashPathBuild(store, "tree", directory: dir) != first)
    }

    @Test func renamingAFileInsideAHashPathDirectoryGivesANewLayer() throws {
        let store = TestStore()
        let dir = makeDirectory("hash-rename")
        try FileManager.default.createDirectory(atPath: dir + "/tree", withIntermediateDirectories: true)
        try "same".write(toFile: dir + "/tree/a", atomically: false, encoding: .utf8)
        let first = try hashPathBuild(store, "tree", directory: dir)
        try FileManager.default.moveItem(atPath: dir + "/tree/a", toPath: dir + "/tree/b")
        #expect(try hashPathBuild(store, "tree", directory: dir) != first)
    }

    @Test func hashPathTellsApartNamesThatAreNotUTF8() throws {
        let store = TestStore()
        let dir = makeDirectory("hash-bytes")
        try shell("mkdir '\(dir)/tree' && printf one > '\(dir)/tree/a'$'\\xff' && printf two > '\(dir)/tree/a'$'\\xfe'")
        let first = try hashPathBuild(store, "tree", directory: dir)
        // Both names would decode to the same "a\u{FFFD}".
        try shell("mv '\(dir)/tree/a'$'\\xff' '\(dir)/tree/a'$'\\xfd'")
        #expect(try hashPathBuild(store, "tree", directory: dir) != first)
    }

    // MARK: scripts past the argument limit

    @Test func aRunScriptPastTheArgumentLimitRunsAndIsShownInPart() throws {
        let store = TestStore()
        // 300 KiB, past execve's 128 KiB for one argument.
        let script = String(repeating: ": padding padding padding padding padding padding padding\n", count: 5000)
            + "echo done > /ran\n"
        let result = try store.plash(["build", "--from", "busybox", "--run-stdin"], stdin: script)
        #expect(result.status == 0, "\(result.stderr.prefix(400))")
        #expect(result.stderr.utf8.count < 4096, "\(result.stderr.prefix(400))")
        let id = result.stdout.trimmingCharacters(in: .newlines)
        #expect(try store.plash(["run", id, "--", "cat", "/ran"]).stdout == "done\n")
    }

    @Test func aFailingScriptPastTheArgumentLimitIsNamedByItsStart() throws {
        let store = TestStore()
        let script = "false # " + String(repeating: "padding ", count: 40_000)
        let result = try store.plash(["build", "--from", "busybox", "--run-stdin"], stdin: script)
        #expect(result.status == 1, "\(result.stderr.prefix(400))")
        let last = result.stderr.split(separator: "\n").last ?? ""
        #expect(last.hasPrefix("plash: build failed: false # padding") && last.utf8.count < 2048, "\(last.prefix(400))")
    }

    @Test func lsShowsAtMostAKibibyteOfAScriptAndNeverWaitsOnAFIFO() throws {
        let store = TestStore()
        let built = try store.plash(["build", "--from", "busybox", "--run-stdin"], stdin: ": " + String(repeating: "x", count: 300_000))
        let id = built.stdout.trimmingCharacters(in: .newlines)
        #expect(built.status == 0)
        let listed = try store.plash(["ls"])
        #expect(listed.status == 0 && listed.stdout.utf8.count < 4096, "\(listed.stdout.prefix(400))")
        let script = try store.id(["nodepath", id]) + "/_script"
        try FileManager.default.removeItem(atPath: script)
        #expect(mkfifo(script, 0o644) == 0)
        let (result, ended) = try runWithDeadline(plash, ["ls"], environment: store.environment, seconds: 20)
        #expect(ended && result.status == 0, "\(result)")
    }

    @Test func aWriteFilePastTheArgumentLimitIsWritten() throws {
        let store = TestStore()
        let dir = makeDirectory("long-write-file")
        let line = String(repeating: "x", count: 100)
        let lines = Array(repeating: line, count: 3000)
        try (["--write-file /big"] + lines).joined(separator: "\n")
            .write(toFile: dir + "/macros", atomically: true, encoding: .utf8)
        let id = try store.id(["build", "--from", "busybox", "--eval-file", "macros"], directory: dir)
        #expect(try store.plash(["run", id, "--", "wc", "-c", "/big"]).stdout.hasPrefix("\(101 * 3000) "))
    }

    @Test func writeFileMakesTheMissingParentDirectories() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--write-file", "/a/b/c/f", "hello"])
        #expect(try store.plash(["run", id, "--", "cat", "/a/b/c/f"]).stdout == "hello\n")
    }

    // MARK: one-liners

    @Test func anIdOfTooManyDigitsSaysSo() throws {
        let result = try TestStore().plash(["parent", "12345678901234567890123"])
        #expect(result.status != 0 && result.stderr == "plash: 12345678901234567890123: not an image id (ids have at most 18 digits)\n",
                "\(result)")
    }

    @Test func doubleDashEndsTheOptionsOfImportTar() throws {
        let store = TestStore()
        let dir = makeDirectory("dash-tar")
        FileManager.default.createFile(atPath: dir + "/-root.tar", contents: Data(tarArchive(sampleEntries)))
        let result = try store.plash(["import-tar", "--", "-root.tar"], directory: dir)
        #expect(result.status == 0, "\(result)")
        #expect(store.indexedIDs.count == 1)
    }

    // MARK: names that are not UTF-8

    @Test func namesThatAreNotUTF8SurviveImportExportAndRemoval() throws {
        let store = TestStore()
        let dir = makeDirectory("bytes")
        try shell("mkdir -p '\(dir)/in/d' && printf one > '\(dir)/in/d/a'$'\\xff' && printf two > '\(dir)/in/d/a'$'\\xfe'"
                  + " && tar -C '\(dir)/in' -cf '\(dir)/in.tar' .")
        let id = try store.id(["import-tar", dir + "/in.tar"])
        _ = try store.id(["export-tar", id, dir + "/out.tar"])
        let listed = try shell("tar -tvf '\(dir)/out.tar' | grep ' ./d/a' | sed 's/.* //'")
        #expect(listed.stdout == "./d/a\\376\n./d/a\\377\n", "\(listed)")
        let node = try store.id(["nodepath", id])
        _ = try store.id(["rm", id])
        #expect(!FileManager.default.fileExists(atPath: node))
        #expect(try shell("find '\(store.data)/tmp' -mindepth 1").stdout == "")
    }

    @Test func anArgumentThatIsNotUTF8IsRefusedRatherThanChanged() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox"])
        let dir = makeDirectory("bytes-argument")
        let result = try shell("cd '\(dir)' && exec '\(plash)' export-tar \(id) o$'\\xff'.tar", environment: store.environment)
        #expect(result.status == 2 && result.stderr.split(separator: "\n").count == 1, "\(result)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == [])
    }

    @Test func plashExecRefusesACommandThatIsNotUTF8RatherThanChangeIt() throws {
        let result = try shell("exec '\(plashExec)' --root '\(try busyboxRoot)' -- /bin/sh -c 'echo ran' a$'\\xff'")
        #expect(result.status == 125 && result.stdout == "" && result.stderr.split(separator: "\n").count == 1, "\(result)")
    }

    @Test func aWorkingDirectoryThatIsNotUTF8IsNeverTakenForAnother() throws {
        let dir = makeDirectory("bytes-cwd")
        // "x\u{FFFD}" is what "x\xff" would decode to.
        try FileManager.default.createDirectory(atPath: dir + "/x\u{FFFD}", withIntermediateDirectories: false)
        FileManager.default.createFile(atPath: dir + "/x\u{FFFD}/another", contents: Data())
        let result = try shell("mkdir '\(dir)'/x$'\\xff' && cd '\(dir)'/x$'\\xff' && exec '\(plashExec)' --root '\(try busyboxRoot)' -- /bin/ls")
        #expect(result.status == 0 && !result.stdout.contains("another"), "\(result)")
    }
}
