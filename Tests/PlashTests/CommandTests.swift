import Foundation
import PlashTestSupport
import Testing

/// The everyday commands, their errors and exit codes.
@Suite struct CommandTests {
    @Test func runTellsItsOwnFailuresFromTheProgramsStatus() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let badValue = try store.plash(["run", "--memory", "lots", "1", "--", "true"])
        #expect(badValue.status == 2, "\(badValue)")
        #expect(badValue.stderr.hasPrefix("plash: --memory lots: "), "\(badValue)")
        let failedBuild = try store.plash(["run", "--from", "busybox", "--run", "exit 3", "--", "true"])
        #expect(failedBuild.status == 125, "\(failedBuild)")
        #expect(try store.plash(["run", "1", "--", "sh", "-c", "exit 125"]).status == 125)
        #expect(try store.plash(["run", "1", "--", "sh", "-c", "exit 3"]).status == 3)
    }

    /// The original's line, word for word: scripts written for it match on it.
    @Test func anUnknownCommandExits2WithTheOriginalsLine() throws {
        let result = try TestStore().plash(["frobnicate"])
        #expect(result.status == 2)
        #expect(result.stderr == "plash error: no such command: frobnicate (try `plash help`)\n")
    }

    @Test func anUnknownOptionExits2WithUsage() throws {
        let store = TestStore()
        let result = try store.plash(["ls", "--long"])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("plash: ls: unknown option --long\nUsage: plash ls"))
        let macro = try store.plash(["build", "--from", "busybox", "--bogus"])
        #expect(macro.status == 2)
        #expect(macro.stderr.hasPrefix("plash: unknown macro --bogus"))
    }

    @Test func noSuchImageIsOneLineAndExit1Or125ForRun() throws {
        let store = TestStore()
        for arguments in [["run", "7"], ["rm", "7"], ["nodepath", "7"], ["parent", "7"], ["build", "--from", "7"]] {
            let result = try store.plash(arguments)
            #expect(result.status == (arguments[0] == "run" ? 125 : 1), "\(arguments)")
            #expect(result.stderr == "plash: no image 7\n", "\(arguments)")
        }
    }

    @Test func helpListsEveryCommandWithOneLine() throws {
        let result = try TestStore().plash(["help"])
        #expect(result.status == 0)
        for command in ["init", "build", "run", "rm", "ls", "nodepath", "parent", "inspect", "map", "mount", "umount",
                        "import-tar", "export-tar", "seccomp", "clean", "purge", "shrink", "data", "version", "help"] {
            #expect(result.stdout.contains("\n  \(command) "), "\(command)")
        }
    }

    @Test func helpMacrosListsEveryMacro() throws {
        let result = try TestStore().plash(["help", "macros"])
        #expect(result.status == 0)
        for macro in ["--from, -f, --image IMAGE", "--from-id", "--from-map", "--run, -x", "--layer, -l",
                      "--invalidate-layer", "--hash-path", "--env", "--write-file", "--write-script", "--entrypoint",
                      "--entrypoint-script", "--eval-file", "--eval-string", "--eval-stdin", "--run-stdin", "--apt",
                      "--apk", "--yum", "--dnf", "--pacman", "--emerge", "--zypper", "--pip", "--pip3", "--npm",
                      "--gem", "-A", "-D", "-U", "-F", "-R", "-G", "--config-env NAME=VALUE...", "--config-workdir DIR",
                      "--config-user", "--config-entrypoint", "--config-cmd", "--config-label", "--config-expose",
                      "--config-volume", "--config-stop-signal"] {
            #expect(result.stdout.contains("\n  \(macro)"), "\(macro)")
        }
    }

    @Test func dataAndVersionPrintOneLine() throws {
        let store = TestStore()
        #expect(try store.plash(["data"]).stdout == store.data + "\n")
        #expect(try store.plash(["version"]).stdout.hasPrefix("plash "))
    }

    @Test func lsShowsIdParentNamesSizeAgeAndScript() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "echo 12345 > /x\ntrue"])
        #expect(try store.plash(["map", "ex", id]).status == 0)
        let lines = try store.plash(["ls"]).stdout.split(separator: "\n").map {
            $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        }
        #expect(lines.count == 3)
        #expect(lines[0] == ["ID", "PARENT", "NAMES", "SIZE", "AGE", "SCRIPT"])
        #expect(Array(lines[1].prefix(3)) == ["1", "0", "-"])
        #expect(lines[1].suffix(2) == ["import", "busybox"])
        #expect(Array(lines[2].prefix(3)) == ["2", "1", "ex"])
        #expect(lines[2].suffix(4) == ["echo", "12345", ">", "/x"])
    }

    @Test func lsShowsWhatAWrittenFileOrAnEntrypointLayerWroteNotItsPrintf() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox", "--write-file", "/etc/motd", "hi", "--layer",
                          "--entrypoint", "/bin/echo", "a b"])
        let rows = try store.plash(["ls"]).stdout.split(separator: "\n").dropFirst(2)
        let scripts = rows.map { row in row.range(of: "  # ").map { String(row[$0.lowerBound...].dropFirst(2)) } ?? String(row) }
        #expect(scripts == ["# write-file /etc/motd", "# entrypoint /bin/echo 'a b'"], "\(scripts)")
    }

    /// A relative PATH would name a file in the caller's working directory, which a step
    /// sees read-only: refused as the macros are read, before anything is built.
    @Test func aRelativePathToWriteIsAUsageErrorBeforeAnythingIsBuilt() throws {
        let store = TestStore()
        for macro in ["--write-file", "--write-script"] {
            let result = try store.plash(["build", "--from", "busybox", macro, "rel", "hi"])
            #expect(result.status == 2 && result.stderr.hasPrefix("plash: \(macro) rel: "), "\(macro): \(result)")
        }
        #expect(store.indexedIDs.isEmpty)
    }

    @Test func aScriptReadFromStdinShowsWithoutABlankLineAfterIt() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        let result = try store.plash(["build", "--from", "1", "--run-stdin"], stdin: "touch /x\n")
        #expect(result.status == 0 && result.stderr == "--> touch /x\n--:\n", "\(result)")
    }

    @Test func runOfASourceNameInsteadOfAnImagePointsToFromOrImage() throws {
        let store = TestStore()
        let busybox = try store.plash(["run", "busybox"])
        #expect(busybox.status == 125)
        #expect(busybox.stderr == "plash: no image busybox; to start from the built-in busybox: plash run --from busybox\n")
        let alpine = try store.plash(["run", "--memory", "64M", "alpine", "--", "ls", "-l"])
        #expect(alpine.stderr == "plash: no image alpine; to start from the image server's alpine: plash run --memory 64M --image alpine -- ls -l\n")
        // The hint's command works as printed; and a stored name is no source.
        #expect(try store.plash(["run", "--from", "busybox", "--", "true"]).status == 0)
        #expect(try store.plash(["map", "busybox", "1"]).status == 0)
        #expect(try store.plash(["run", "busybox", "--", "true"]).status == 0)
    }

    @Test func aPlashfileGivenAsDockerGivesItsFileIsRefusedSayingHowToBuildIt() throws {
        let store = TestStore()
        let dir = makeDirectory("pf")
        try "#!/usr/bin/env plash\n--from busybox\n--run\ntouch /built\n".write(toFile: dir + "/Plashfile", atomically: true, encoding: .utf8)
        // -f is --from here: the name is not looked up on the image server.
        let docker = try store.plash(["build", "-f", "Plashfile"], directory: dir)
        #expect(docker.status == 2, "\(docker)")
        #expect(docker.stderr.hasPrefix("plash: --from Plashfile: no image Plashfile, but a file; to build a Plashfile: plash build --eval-file Plashfile (the image server's: --from-lxc Plashfile)\n"), "\(docker)")
        let path = try store.plash(["build", "./Plashfile"], directory: dir)
        #expect(path.status == 2)
        #expect(path.stderr.hasPrefix("plash: ./Plashfile: expected a macro; to build a Plashfile: plash build --eval-file ./Plashfile\n"), "\(path)")
        let built = try store.id(["build", "--eval-file", "Plashfile"], directory: dir)
        #expect(try store.plash(["run", built, "--", "ls", "/built"]).stdout == "/built\n")
    }

    @Test func importOfAnUnknownSourceNamesTheImportCommands() throws {
        let result = try TestStore().plash(["import", "alpine"])
        #expect(result.status == 1)
        #expect(result.stderr == "plash: import alpine: only busybox is built in; from an image server: plash import-lxc alpine; "
                + "a registry: plash import-docker alpine; also import-url, import-debootstrap, import-tar, import-oci, import-docker-archive\n")
    }

    @Test func aRelativePlashDataIsTakenAgainstTheWorkingDirectoryOnce() throws {
        let dir = makeDirectory("rel")
        let environment = ["PLASH_DATA": "./rel//store/", "HOME": dir]
        let data = try run(plash, ["data"], environment: environment, directory: dir)
        #expect(data.stdout == dir + "/rel/store\n", "\(data)")
        // A Plashfile is built in its own directory, with the store of the caller's.
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        try writeExecutable(dir + "/sub/Plashfile", "#!/usr/bin/env plash\n--from busybox\n")
        let ran = try run(plash, ["sub/Plashfile", "--", "echo", "hi"], environment: environment, directory: dir)
        #expect(ran.status == 0 && ran.stdout == "hi\n", "\(ran)")
        #expect(FileManager.default.fileExists(atPath: dir + "/rel/store/plash-store"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/sub/rel"))
    }

    @Test func importTarWithoutAFileOnATerminalSaysWhatItWaitsFor() throws {
        let store = TestStore()
        let (result, ended) = try runWithDeadline("/usr/bin/script", ["-qec", "\(plash) import-tar; echo status $?", "/dev/null"],
                                                  environment: store.environment, seconds: 10)
        #expect(ended, "import-tar waited on the terminal")
        #expect(result.stdout.contains("plash: import-tar: no FILE, and stdin is a terminal") && result.stdout.contains("status 2"),
                "\(result)")
        #expect(store.indexedIDs.isEmpty)
    }

    @Test func mapRejectsNamesThatLookLikeIds() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        let result = try store.plash(["map", "42", "1"])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("plash: 42: not a valid name"))
    }

    @Test func mountShowsTheMergedImageAndUmountRemovesIt() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "echo mounted > /m"])
        let dir = makeDirectory()
        let mounted = try store.plash(["mount", id, dir])
        #expect(mounted.status == 0, "\(mounted)")
        #expect((try? String(contentsOfFile: dir + "/m", encoding: .utf8)) == "mounted\n")
        #expect(FileManager.default.fileExists(atPath: dir + "/bin/busybox"))
        #expect(try store.plash(["umount", dir]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: dir + "/m"))
    }

    @Test func shrinkRemovesTheOlderHalf() throws {
        let store = TestStore()
        for n in 0..<5 { _ = try store.id(["build", "--from", "busybox", "--run", "echo \(n) > /n"]) }
        #expect(store.indexedIDs == [1, 2, 3, 4, 5, 6])
        #expect(try store.plash(["shrink"]).status == 0)
        #expect(store.indexedIDs == [1, 5, 6])
    }

    @Test func purgeAsksFirst() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        let refused = try store.plash(["purge"], stdin: "n\n")
        #expect(refused.status == 0 && refused.stderr.hasSuffix("plash: purge: not confirmed, nothing removed\n"))
        #expect(store.indexedIDs == [1])
        #expect(try store.plash(["purge"], stdin: "y\n").status == 0)
        #expect(store.indexedIDs == [])
        #expect(try store.nodes == [])
    }

    @Test func fromAnUnknownNameSaysWhatToDo() throws {
        let result = try TestStore().plash(["build", "-A", "python3"])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("plash: import-lxc alpine: http://127.0.0.1:9/meta/1.0/index-system: connect 127.0.0.1:9: "),
                "\(result)")
    }
}

@Suite struct SeccompCommandTests {
    @Test func seccompCompilesAProfileIntoTheStoreOnce() throws {
        let store = TestStore()
        let profile = makeDirectory() + "/profile.json"
        try #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#
            .write(toFile: profile, atomically: true, encoding: .utf8)
        let first = try store.plash(["seccomp", profile])
        #expect(first.status == 0, "\(first)")
        let path = first.stdout.trimmingCharacters(in: .newlines)
        #expect(path.hasPrefix(store.data + "/seccomp/") && path.hasSuffix(".bpf"))
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(try store.plash(["seccomp", profile]).stdout == first.stdout)
    }

    @Test func seccompRejectsWhatIsNotAProfile() throws {
        let store = TestStore()
        let profile = makeDirectory() + "/profile.json"
        try "{}".write(toFile: profile, atomically: true, encoding: .utf8)
        let result = try store.plash(["seccomp", profile])
        #expect(result.status == 1)
        #expect(result.stderr == "plash: seccomp profile \(profile): missing \"defaultAction\"\n", "\(result)")
    }
}
