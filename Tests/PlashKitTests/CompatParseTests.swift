#if canImport(Glibc)
import Glibc
#endif
import PlashExec
import PlashKit
import PlashSystem
import Testing

/// The macros of plash's first versions, as pure logic: words -> plan -> script.
@Suite struct CompatParseTests {
    func plan(_ words: [String]) throws -> BuildPlan { try parseMacros(words, readStdin: { "" }) }

    @Test func importEnvPutsTheCallersValueIntoTheLayer() throws {
        setenv("PLASH_COMPAT_TEST", "it's 1", 1)
        let result = try plan(["--import-env", "PLASH_COMPAT_TEST", "PLASH_COMPAT_TEST:INNER", "PLASH_COMPAT_UNSET"])
        #expect(result.current.environment == ["PLASH_COMPAT_TEST=it's 1", "INNER=it's 1"])
        #expect(try shellScript(result) == "PLASH_COMPAT_TEST='it'\\''s 1'\nINNER='it'\\''s 1'\n")
        #expect(throws: PlashError.self) { try plan(["--import-env", "PLASH_COMPAT_TEST:1bad"]) }
    }

    @Test func defpmDefinesAPackageManagerMacro() throws {
        let result = try plan(["--defpm", "mypm", "mypm update", "mypm get {}", "--mypm", "a", "b c", "--mypm"])
        #expect(result.current.steps == ["mypm update", "mypm get a 'b c'"])
        let line = try plan(plashfileWords("--defpm\nmypm\nmypm get {}\n--mypm a -b\n"))
        #expect(line.current.steps == ["mypm get a -b"])
        #expect(throws: PlashError.self) { try plan(["--mypm", "a"]) }
        #expect(throws: PlashError.self) { try plan(["--defpm", "mypm"]) }
    }

    /// The original's `plash eval --apt pkg1 'shell escape'`; apt's DEBIAN_FRONTEND comes
    /// from the build's environment instead (BuildInputTests).
    @Test func aptQuotesEachArgumentAsTheOriginalsEvalPrinted() throws {
        #expect(try shellScript(plan(["--apt", "pkg1", "shell escape"]))
                == "# apt pkg1 'shell escape'\napt-get update\napt-get install -y pkg1 'shell escape'\napt-get clean && rm -rf /var/lib/apt/lists/*\n")
        #expect(try plan(plashfileWords("--apt pkg1 pkg2\n--run touch /a b\n")).current.steps
                == ["# apt pkg1 pkg2\napt-get update\napt-get install -y pkg1 pkg2\napt-get clean && rm -rf /var/lib/apt/lists/*", "touch /a b"])
    }

    /// The original's shrink removes half the images rounded up: of one image, that one.
    @Test func shrinkRemovesHalfRoundedUpAsTheOriginal() {
        #expect(shrinkOrder([(id: 1, parent: 0)]) == [1])
        // Two trees, 1 <- 2, 3 and 4 <- 5, 6, 7: the older tree, then the oldest leaf.
        let trees = [(1, 0), (2, 1), (3, 1), (4, 0), (5, 4), (6, 4), (7, 4)].map { (id: $0.0, parent: $0.1) }
        #expect(shrinkOrder(trees) == [2, 3, 1, 5])
    }

    @Test func hintsOfTheOriginalMapToMacros() throws {
        let result = try plan(["--hint", "image", "1", "--hint", "use-env MYENV", "--hint", "exec", "/bin/echo",
                               "--hint", "layer", "--hint", "whatever", "x"])
        #expect(result.source == .any("1"))
        #expect(result.runEnvironment == ["MYENV"])
        #expect(result.hasEntrypoint)
        #expect(result.layers.count == 2)
    }

    @Test func layerWithAMacroPutsEachArgumentInALayerOfItsOwn() throws {
        let result = try plan(["--run", "a", "--layer", "run", "b", "--\\ -c", "--layer"])
        #expect(result.nonEmptyLayers.map(\.steps) == [["a"], ["b"], ["-c"]])
    }

    @Test func entrypointTakesACommandWithArguments() throws {
        let result = try plan(["--entrypoint", "/bin/echo", "one two"])
        #expect(result.current.steps == ["# entrypoint /bin/echo 'one two'\nprintf '%s\\n' '#!/bin/sh' 'exec /bin/echo '\\''one two'\\'' \"$@\"' > /.plash-entrypoint && chmod 755 /.plash-entrypoint"])
    }

    @Test func mountAndEnvPrefixAreForTheRun() throws {
        let result = try plan(["--mount", "/srv", "/a:/b", "--env-prefix", "LC_"])
        #expect(result.runBinds == [Bind("/srv", "/srv"), Bind("/a", "/b")])
        #expect(result.runEnvironmentPrefixes == ["LC_"])
        #expect(result.current.isEmpty)
        #expect(throws: PlashError.self) { try plan(["--mount", "srv"]) }
    }

    @Test func commentsAndEscapedArgumentsInPlashfiles() throws {
        let words = plashfileWords("#!/usr/bin/env plash-exec\n--from 1\n--# a comment\n--write-file /f\nline1\n--# more\n--\\ --dashed\n--\\\n")
        #expect(words == ["--from", "1", "--write-file", "/f", "line1", "--\\ --dashed", "--\\"])
        #expect(try plan(words).current.steps == ["# write-file /f\n" + #"printf '%s\n' line1 --dashed '' > /f"#])
        #expect(try plan(["--#", "ignored", "words"]).current.isEmpty)
    }

    @Test func downloadingMacrosCheckTheirArgument() throws {
        for macro in ["--from-url", "--eval-url"] {
            #expect(throws: PlashError.self) { try plan([macro, "x"]) }
        }
        #expect(try plan(["--from-lxc", "x"]).source == .imported(source: "lxc", arguments: ["x"]))
    }

    @Test func fromDockerTakesARegistryReference() throws {
        #expect(try plan(["--from-docker", "alpine:3.19"]).source == .imported(source: "docker", arguments: ["alpine:3.19"]))
        #expect(try shellScript(plan(["--from-docker", "alpine"])).hasPrefix("### plash hint: image=(registry alpine)\n"))
        #expect(throws: PlashError.self) { try plan(["--from-docker", "Alpine"]) }
    }

    @Test func evalPrintsLayersHintsAndHashes() throws {
        let result = try plan(["-f", "1", "--run", "a", "--layer", "--invalidate-layer", "--mount", "/srv", "--entrypoint", "sh"])
        let script = try shellScript(result).split(separator: "\n").map(String.init)
        #expect(script.first == "### plash hint: image=1")
        #expect(script[1] == "a")
        #expect(script[2] == "### plash hint: layer")
        #expect(script.contains(": invalidate-layer"))
        #expect(script.contains("### plash hint: mount=/srv"))
        #expect(script.last == "### plash hint: exec=/.plash-entrypoint")
    }

    @Test func evalPrintsConfigMacrosAsHintsOfTheirLayer() throws {
        let result = try plan(["-f", "1", "--config-env", "A=1 2", "--layer", "--run", "b", "--config-expose", "80"])
        #expect(try shellScript(result) == "### plash hint: image=1\n### plash hint: config=--config-env 'A=1 2'\n"
                + "### plash hint: layer\nb\n### plash hint: config=--config-expose 80/tcp\n")
    }

    @Test func theOriginalsCentosShorthandAndAddAptRepository() throws {
        let result = try plan(["-C", "vim", "--add-apt-repository", "ppa:x/y"])
        #expect(result.source == .any("centos"))
        #expect(result.current.steps == ["# yum vim\nyum install -y vim\nyum clean all",
                                         "# add-apt-repository ppa:x/y\napt-get update\napt-get install -y software-properties-common\n"
                                         + "add-apt-repository -y ppa:x/y\napt-get clean && rm -rf /var/lib/apt/lists/*"])
    }
}
