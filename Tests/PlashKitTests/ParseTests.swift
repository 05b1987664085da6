import PlashExec
import PlashKit
import PlashSystem
import Testing

/// Pure logic: macros -> plan, run arguments, Plashfiles, cache keys, tar checks.
@Suite struct ParseTests {
    func plan(_ words: [String], stdin: String = "") throws -> BuildPlan {
        try parseMacros(words, readStdin: { stdin })
    }

    @Test func layerEndsALayerAndATrailingOneAddsNone() throws {
        let result = try plan(["-f", "busybox", "-x", "a", "b", "-l", "--run", "c", "--layer"])
        #expect(result.source == .any("busybox"))
        #expect(result.nonEmptyLayers.map(\.steps) == [["a", "b"], ["c"]])
    }

    @Test func packageManagersInstallAndLeaveNoListsOrCachesInOneStepThatNamesThePackages() throws {
        #expect(try plan(["--apt", "curl", "git"]).current.steps
                == ["# apt curl git\napt-get update\napt-get install -y curl git\napt-get clean && rm -rf /var/lib/apt/lists/*"])
        #expect(try plan(["--apk", "a", "b"]).current.steps == ["# apk a b\napk add --no-cache a b"])
        #expect(try plan(["--pip3", "requests"]).current.steps == ["# pip3 requests\npip3 install --no-cache-dir requests"])
        #expect(try plan(["--dnf", "x"]).current.steps == ["# dnf x\ndnf install -y x\ndnf clean all"])
        #expect(try plan(["--apk"]).current.steps == [])
    }

    @Test func aNewlineInAPackageNameCannotEndTheStepsCommentLine() throws {
        let step = try #require(try plan(["--apk", "a\ntouch /x"]).current.steps.first)
        #expect(step == "# apk 'a touch /x'\napk add --no-cache 'a\ntouch /x'")
    }

    @Test func writtenFilesAndEntrypointsSayWhatTheyWriteOnTheirFirstLine() throws {
        let lines = { (words: [String]) in try plan(words).current.steps.map { $0.prefix { $0 != "\n" } } }
        #expect(try lines(["--write-file", "/etc/motd", "hi"]) == ["# write-file /etc/motd"])
        #expect(try lines(["--write-script", "/bin/x", "echo"]) == ["# write-script /bin/x"])
        #expect(try lines(["--entrypoint", "/bin/echo", "a b"]) == ["# entrypoint /bin/echo 'a b'"])
        #expect(try lines(["--entrypoint-script", "exec cat"]) == ["# entrypoint-script"])
    }

    @Test func distributionShorthandsSetTheImageAndInstall() throws {
        let result = try plan(["-A", "python3"])
        #expect(result.source == .any("alpine"))
        #expect(result.current.steps == ["# apk python3\napk add --no-cache python3"])
        #expect(try plan(["-D"]).source == .any("debian"))
        #expect(try plan(["-G"]).source == .any("gentoo"))
    }

    @Test func twoImagesToStartFromAreAnError() throws {
        #expect(throws: PlashError.self) { try plan(["--from", "a", "--from-id", "2"]) }
    }

    @Test func unknownMacrosAndMissingArgumentsAreUsageErrors() throws {
        #expect(throws: PlashError.self) { try plan(["--nope"]) }
        #expect(throws: PlashError.self) { try plan(["--run"]) }
        #expect(throws: PlashError.self) { try plan(["--from"]) }
        #expect(throws: PlashError.self) { try plan(["stray"]) }
    }

    @Test func evalStringAndEvalStdinInsertMacros() throws {
        let result = try plan(["--eval-string", "--from busybox\n--run\necho hi", "--eval-stdin"], stdin: "--run x\n")
        #expect(result.source == .any("busybox"))
        #expect(result.current.steps == ["echo hi", "x"])
    }

    @Test func stdinIsReadOnlyOnce() throws {
        #expect(throws: PlashError.self) { try plan(["--run-stdin", "--run-stdin"]) }
    }

    @Test func envAndHashPathGoToTheCurrentLayerAndEnvCarriesOn() throws {
        let result = try plan(["--env", "A", "--hash-path", "f", "--run", "x", "--layer", "--run", "y"])
        #expect(result.layers[0].environment == ["A"])
        #expect(result.layers[0].hashPaths == ["f"])
        #expect(result.layers[1].environment == ["A"])
        #expect(result.layers[1].hashPaths == [])
    }

    @Test func writeFileQuotesEveryLine() throws {
        #expect(try plan(["--write-file", "/a b", "it's", "$HOME"]).current.steps
                == ["# write-file '/a b'\nprintf '%s\\n' 'it'\\''s' '$HOME' > '/a b'"])
    }

    @Test func entrypointIsRemembered() throws {
        let result = try plan(["--entrypoint", "/bin/echo"])
        #expect(result.hasEntrypoint)
        #expect(result.current.steps[0].contains(entrypointPath))
    }

    @Test func plashfileWordsAreOnePerLineWithComments() {
        let text = "#!/usr/bin/env plash\n# comment\n--from busybox\n\n--run\n  touch /a  \n--apk a b\n"
        #expect(plashfileWords(text) == ["--from", "busybox", "--run", "  touch /a", "--apk", "--\\ a", "--\\ b"])
    }

    @Test func crlfLinesAreLinesOfAPlashfile() {
        let text = "#!/usr/bin/env plash\r\n# comment\r\n--from busybox\r\n\r\n--run\r\n  touch /a  \r\n--apk a b\r\n"
        #expect(plashfileWords(text) == ["--from", "busybox", "--run", "  touch /a", "--apk", "--\\ a", "--\\ b"])
    }

    @Test func runTakesExecOptionsThenAnImageThenTheCommand() throws {
        #expect(try parseRun(["--bind", "/a:/b", "--no-tmp", "--env=X=1", "7", "--", "ls", "-l"])
                == RunRequest(execOptions: ["--bind", "/a:/b", "--no-tmp", "--env=X=1"], image: .stored("7"),
                              command: ["ls", "-l"]))
        #expect(try parseRun(["name", "ls", "--", "x"]) == RunRequest(image: .stored("name"), command: ["ls", "--", "x"]))
        #expect(try parseRun(["2"]) == RunRequest(image: .stored("2")))
    }

    @Test func runPassesOnEveryRuntimeOptionOfPlashExecsTableButNotTheImageOptions() throws {
        for option in execOptions {
            let words = [option.name] + (option.takesValue ? ["v"] : [])
            let request = try parseRun(words + ["7"])
            if option.passedByRun {
                #expect(request == RunRequest(execOptions: words, image: .stored("7")), "\(option.name)")
            } else {
                #expect(request.execOptions.isEmpty, "\(option.name)")
            }
        }
        #expect(execOptions.filter { !$0.passedByRun }.map(\.name) == ["--root", "--lower"])
    }

    @Test func runTakesMacrosUpToTheDoubleDash() throws {
        #expect(try parseRun(["--no-home", "--from", "busybox", "--run", "x", "--", "ls", "/"])
                == RunRequest(execOptions: ["--no-home"], image: .build(["--from", "busybox", "--run", "x"]),
                              command: ["ls", "/"]))
    }

    /// The line of the usage error with which plash run refuses `words`, or nil.
    func runRefusal(_ words: [String]) -> String? {
        do {
            _ = try parseRun(words)
            return nil
        } catch let error as PlashError {
            return error.kind == .usage && error.usage == runUsage ? "\(error)" : "not a usage error: \(error)"
        } catch {
            return "\(error)"
        }
    }

    @Test func anOptionAfterTheImageOrTheMacrosSaysThatOptionsGoBefore() throws {
        for (words, message) in [(["2", "--memory", "1G"], "--memory: options go before the image: plash run --memory SIZE IMAGE ..."),
                                 (["2", "--no-tmp=yes"], "--no-tmp: options go before the image: plash run --no-tmp IMAGE ..."),
                                 (["--from", "busybox", "--user", "web", "--", "id"],
                                  "--user: options go before the macros: plash run --user USER[:GROUP] MACRO... ...")] {
            #expect(runRefusal(words) == message, "\(words)")
        }
        // After `--` a program may be named like an option; a macro named like one stays a macro.
        #expect(try parseRun(["2", "--", "--memory"]).command == ["--memory"])
        #expect(try parseRun(["--from", "busybox", "--env", "A=1"]).image == .build(["--from", "busybox", "--env", "A=1"]))
    }

    @Test func dockerHabitsNamePlashsWay() throws {
        for (words, hint) in [(["-it", "2", "sh"], "-it: not needed: the program has this terminal"),
                              (["--rm", "2"], "--rm: not needed: a container leaves nothing behind"),
                              (["-v", "/a:/b", "2"], "-v: use --bind SRC:DST"), (["2", "-e", "A=1"], "-e: use --env NAME=VALUE"),
                              (["-p", "80:80", "2"], "-p: not needed: the container shares the host's network"),
                              (["--from", "busybox", "-t", "--", "sh"], "-t: not needed")] {
            #expect(runRefusal(words)?.hasPrefix(hint) == true, "\(words): \(runRefusal(words) ?? "accepted")")
        }
    }

    @Test func runWithoutAnImageIsAUsageError() {
        #expect(throws: PlashError.self) { try parseRun([]) }
        #expect(throws: PlashError.self) { try parseRun(["--bind"]) }
        #expect(throws: PlashError.self) { try parseRun(["--no-tmp", "--", "ls"]) }
    }

    @Test func sha256MatchesTheStandardVectors() {
        var empty = SHA256()
        #expect(empty.hexDigest() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        var abc = SHA256()
        abc.update("abc")
        #expect(abc.hexDigest() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        var long = SHA256()
        long.update("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
        #expect(long.hexDigest() == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func cacheKeysDependOnParentScriptAndVariableNames() throws {
        let builder = Builder(store: Store(path: "/nonexistent"))
        let layer = LayerSpec(steps: ["touch /a"])
        let key = try builder.cacheKey(layer, parent: 1)
        #expect(try builder.cacheKey(layer, parent: 1) == key)
        #expect(try builder.cacheKey(layer, parent: 2) != key)
        #expect(try builder.cacheKey(LayerSpec(steps: ["touch /b"]), parent: 1) != key)
        #expect(try builder.cacheKey(LayerSpec(steps: ["touch", "/a"]), parent: 1) != key)
        var withEnv = layer
        withEnv.environment = ["X"]
        #expect(try builder.cacheKey(withEnv, parent: 1) != key)
    }

    @Test func tarNamesThatLeaveTheRootAreRefused() throws {
        #expect(try TarExtractor.relativePath("./bin/busybox", "the name") == "bin/busybox")
        #expect(try TarExtractor.relativePath("./", "the name") == "")
        #expect(try TarExtractor.relativePath("a//b/./c/", "the name") == "a/b/c")
        #expect(throws: PlashError.self) { try TarExtractor.relativePath("a/../../b", "the name") }
        #expect(throws: PlashError.self) { try TarExtractor.relativePath("a/..", "the name") }
        #expect(throws: PlashError.self) { try TarExtractor.relativePath("/abs", "the name") }
        #expect(throws: PlashError.self) { try TarExtractor.relativePath("", "the name") }
    }

    @Test func shrinkRemovesOldLeavesFirst() {
        // 1 <- 2 <- 3, 1 <- 4, 1 <- 5, 6 alone
        let images = [(1, 0), (2, 1), (3, 2), (4, 1), (5, 1), (6, 0)].map { (id: $0.0, parent: $0.1) }
        #expect(shrinkOrder(images) == [3, 2, 4])
    }

    @Test func shrinkKeepsWhatItIsToldAndEverythingBelow() {
        // 1 <- 2 <- 3, 1 <- 4, 1 <- 5, 6 alone; 3 is named: 2 and 1 stay with it.
        let images = [(1, 0), (2, 1), (3, 2), (4, 1), (5, 1), (6, 0)].map { (id: $0.0, parent: $0.1) }
        #expect(shrinkOrder(images, keep: [3]) == [4, 5, 6])
        #expect(shrinkOrder(images, keep: [3, 4, 5, 6]) == [])
    }

    @Test func shellQuoteLeavesPlainWordsAlone() {
        #expect(shellQuote("curl") == "curl")
        #expect(shellQuote("a b") == "'a b'")
        #expect(shellQuote("") == "''")
    }

    @Test func anErrorIsOneLineWhateverTheNamesItCarries() {
        let error = PlashError.system("open", "a\nb\tc\u{1b}", errno: 2).context("import-tar x\r")
        #expect(error.description == "import-tar x\\r: open a\\nb\\tc\\x1b: No such file or directory")
    }
}
