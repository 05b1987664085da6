import Foundation
import PlashTestSupport
import Testing

/// The plash CLI as a new user meets it: help that fits a terminal, usage of the command
/// typed, a pointer for docker's commands, texts that agree with docs/ and completions
/// that agree with the command table.
@Suite struct CLITests {
    func lines(_ text: String) -> [String] { text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }

    /// The usage lines `plash NAME --help` starts with.
    func usage(_ store: TestStore, _ name: String) throws -> String {
        let help = try store.plash([name, "--help"]).stdout
        return help.components(separatedBy: "\n\n")[0]
    }

    @Test func aMacroMistakeShowsTheUsageOfTheCommandTypedNotBuilds() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        for arguments in [["run", "--privileged", "1", "true"], ["eval", "--import", "foo"],
                          ["nodepath", "--from", "1", "--bogus"], ["export-tar", "--from", "1", "--bogus", "--", "-"]] {
            let result = try store.plash(arguments)
            #expect(result.status == 2, "\(arguments): \(result)")
            let shown = lines(result.stderr).dropFirst().joined(separator: "\n")
            #expect(shown == (try usage(store, arguments[0])) + "\n", "\(arguments): \(result)")
        }
    }

    @Test func everyHelpLineFitsEightyColumnsAndEndsInNoSpace() throws {
        let store = TestStore()
        let names = lines(try store.plash(["complete", "commands"]).stdout).filter { !$0.isEmpty }
        #expect(names.count > 20)
        for topic in [[], ["macros"]] + names.map { [$0] } {
            let help = try store.plash(["help"] + topic)
            #expect(help.status == 0, "\(topic): \(help)")
            for line in lines(help.stdout) {
                #expect(line.count <= 80, "\(topic): \(line.count) columns: \(line)")
                #expect(!line.hasSuffix(" "), "\(topic): ends in a space: \(line)")
            }
        }
    }

    /// `help macros` and docs/macros.md's table name each macro's arguments alike.
    @Test func helpMacrosNamesTheArgumentsDocsMacrosNames() throws {
        let docs = try String(contentsOfFile: repositoryDirectory + "/docs/macros.md", encoding: .utf8)
        var documented: [String: String] = [:]
        for row in lines(docs) where row.hasPrefix("| `-") {
            let cells = row.replacingOccurrences(of: "\\|", with: "\u{0}").split(separator: "|", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "\u{0}", with: "|") }
            for name in cells[1].split(separator: ",") { documented[name.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: ["`"])] = cells[2] }
        }
        #expect(documented.count > 50)
        let help = try TestStore().plash(["help", "macros"]).stdout
        var shown: [String: String] = [:]
        // The table, not the original's macros listed after it.
        for line in lines(help.components(separatedBy: "\n\n")[0]) where line.hasPrefix("  -") {
            // `  --run, -x CMD...    run each ...`: the names, their arguments, the help.
            let synopsis = line.dropFirst(2).components(separatedBy: "  ")[0]
            var words = synopsis.split(separator: " ").map(String.init)
            var names: [String] = []
            while let word = words.first, word.hasPrefix("-") { names.append(word.trimmingCharacters(in: [","])); words.removeFirst() }
            for name in names { shown[name] = words.joined(separator: " ") }
        }
        #expect(shown.count > 50)
        for (name, arguments) in shown {
            #expect(documented[name] == arguments, "\(name): help macros shows \(arguments), docs/macros.md \(documented[name] ?? "nothing")")
        }
    }

    @Test func dockersCommandsNamePlashsWayInOneLine() throws {
        let store = TestStore()
        for (command, way) in [("images", "plash ls"), ("rmi", "plash rm"), ("exec", "plash run"), ("logs", "plash keeps none"),
                               ("tag", "plash map"), ("commit", "plash create")] {
            let result = try store.plash([command])
            #expect(result.status == 2, "\(command): \(result)")
            #expect(lines(result.stderr).count == 2 && result.stderr.contains(way), "\(command): \(result)")
        }
        // Those plash has under the same name.
        for command in ["ps", "pull", "inspect", "push", "build", "run"] {
            #expect(!(try store.plash([command, "--help"]).stdout.isEmpty), "\(command)")
        }
    }

    /// docs/plash.md names each command by the usage `plash NAME --help` prints.
    @Test func docsPlashMdShowsEachCommandsUsage() throws {
        let docs = try String(contentsOfFile: repositoryDirectory + "/docs/plash.md", encoding: .utf8)
        let store = TestStore()
        for name in lines(try store.plash(["complete", "commands"]).stdout) where !name.isEmpty {
            for line in lines(try usage(store, name)) {
                let form = line.replacingOccurrences(of: "Usage: plash ", with: "").trimmingCharacters(in: .whitespaces)
                    .replacingOccurrences(of: "plash ", with: "")
                #expect(docs.contains("**\(form)**"), "docs/plash.md lacks **\(form)**")
            }
        }
    }

    @Test func anOptionTheTableDoesNotDeclareIsRefusedWithTheCommandsUsage() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let result = try store.plash(["inspect", "--yes", "1"])
        #expect(result.status == 2, "\(result)")
        #expect(result.stderr == "plash: inspect: unknown option --yes\n" + (try usage(store, "inspect")) + "\n", "\(result)")
        // After the IMAGE of a command that runs one, the words are the program's.
        let created = try store.plash(["create", "1", "sh", "-c", "echo made > /made"])
        #expect(created.status == 0, "\(created)")
        #expect(try store.plash(["run", created.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "cat", "/made"]).stdout == "made\n")
        let missing = try store.plash(["create"])
        #expect(missing.status == 2 && missing.stderr.hasPrefix("plash: create: missing arguments\n"), "\(missing)")
        let extra = try store.plash(["parent", "1", "2"])
        #expect(extra.status == 2 && extra.stderr.hasPrefix("plash: parent: too many arguments\n"), "\(extra)")
    }

    /// `plash copy 1 "$UNSET"`: an empty FILE or DIR is a usage error of the command
    /// typed, before anything is opened, made or imported.
    @Test func anEmptyFileOrDirectoryIsAUsageErrorAndNothingIsMade() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let directory = makeDirectory("empty operands")
        for arguments in [["import-tar", ""], ["import-oci", ""], ["import-docker-archive", ""], ["export-tar", "1", ""],
                          ["export-oci", "1", ""], ["export-docker-archive", "1", ""], ["add-layer", "1", ""],
                          ["copy", "1", ""], ["mount", "1", ""], ["umount", ""], ["runb", "1", "", "true"], ["seccomp", ""]] {
            let result = try store.plash(arguments, directory: directory)
            #expect(result.status == 2, "\(arguments): \(result)")
            #expect(lines(result.stderr).dropFirst().joined(separator: "\n") == (try usage(store, arguments[0])) + "\n",
                    "\(arguments): \(result)")
        }
        #expect(store.indexedIDs == [1])
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }

    /// An option the command does not take is that command's mistake, with its usage, also
    /// where it is a macro too (-x is --run): macros in place of IMAGE start with the
    /// image to start from, so `plash rm -x 1` builds and removes nothing. `plash -x`
    /// (macros first: plash run) shows run's usage, not build's.
    @Test func anUnknownOptionShowsTheUsageOfTheCommandTypedAndNothingIsBuilt() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        for arguments in [["rm", "-x", "1"], ["nodepath", "-x", "1"], ["export-tar", "--run", "true", "--from", "1", "--", "-"]] {
            let result = try store.plash(arguments)
            #expect(result.status == 2, "\(arguments): \(result)")
            #expect(lines(result.stderr).dropFirst().joined(separator: "\n") == (try usage(store, arguments[0])) + "\n",
                    "\(arguments): \(result)")
        }
        #expect(store.indexedIDs == [1])
        let macrosFirst = try store.plash(["-x"])
        #expect(macrosFirst.status == 2, "\(macrosFirst)")
        #expect(lines(macrosFirst.stderr).dropFirst().joined(separator: "\n") == (try usage(store, "run")) + "\n", "\(macrosFirst)")
    }

    /// PLASH_HTTP_TIMEOUT=60s, a number setting that holds no number, is refused in one
    /// line before anything is done, not taken silently for the default; empty is unset.
    @Test func aNumberSettingThatIsNoNumberIsRefusedBeforeAnythingIsDone() throws {
        let names = ["PLASH_HTTP_TIMEOUT", "PLASH_HTTP_MIN_RATE", "PLASH_HTTP_MAX_HEAD", "PLASH_HTTP_MAX_MEMORY",
                     "PLASH_MAX_EXPANSION", "PLASH_PUSH_CHUNK_MIB"]
        let store = TestStore()
        for name in names {
            let result = try store.plash(["build", "--from", "busybox"], environment: [name: "60s"])
            #expect(result.status == 2 && result.stderr == "plash: \(name)=60s: not a whole number (unset it for the default)\n",
                    "\(name): \(result)")
        }
        #expect(store.indexedIDs.isEmpty)
        let unset = try store.plash(["build", "--from", "busybox"], environment: Dictionary(uniqueKeysWithValues: names.map { ($0, "") }))
        #expect(unset.status == 0, "\(unset)")
        // Also where plash runs a stored image without plash-builder's code.
        for name in names {
            let result = try store.plash(["run", "1", "--", "echo", "ran"], environment: [name: "60s"])
            #expect(result.status == 2 && result.stdout.isEmpty, "\(name): \(result)")
        }
    }

    /// PLASH_OVERLAY=bogus is refused in one line before anything is done, not taken
    /// silently for the default.
    @Test func anOverlaySettingThatIsNoneOfItsValuesIsRefusedBeforeAnythingIsDone() throws {
        let store = TestStore()
        let result = try store.plash(["build", "--from", "busybox", "--run", "true"], environment: ["PLASH_OVERLAY": "bogus"])
        #expect(result.status == 2 && lines(result.stderr).count == 2, "one line: \(result)")
        #expect(store.indexedIDs.isEmpty)
        let id = try store.id(["import", "busybox"])
        let run = try store.plash(["run", id, "--", "echo", "ran"], environment: ["PLASH_OVERLAY": "bogus"])
        #expect(run.status == 2 && run.stdout.isEmpty && lines(run.stderr).count == 2, "one line: \(run)")
    }

    /// NAME names a profile read from stdin; with a profile's path it is one too many.
    @Test func seccompTakesANameOnlyForAProfileOnStdin() throws {
        let store = TestStore()
        let profile = makeDirectory("profile") + "/p.json"
        try #"{"defaultAction": "SCMP_ACT_ALLOW"}"#.write(toFile: profile, atomically: true, encoding: .utf8)
        let extra = try store.plash(["seccomp", profile, "name"])
        #expect(extra.status == 2 && extra.stderr.hasPrefix("plash: seccomp: too many arguments"), "\(extra)")
        #expect(!FileManager.default.fileExists(atPath: store.data + "/seccomp"), "it compiled \(profile)")
        let named = try store.plash(["seccomp", "-", "name"], stdin: #"{"defaultAction": "SCMP_ACT_ALLOW"}"#)
        #expect(named.status == 0, "\(named)")
    }

    /// completions/ is what `plash complete script SHELL` writes, as installed.
    @Test func theCommittedCompletionsAreWhatPlashWrites() throws {
        for (shell, file) in [("bash", "plash.bash"), ("zsh", "_plash"), ("fish", "plash.fish")] {
            let made = try TestStore().plash(["complete", "script", shell])
            #expect(made.status == 0, "\(made)")
            let committed = try String(contentsOfFile: repositoryDirectory + "/completions/" + file, encoding: .utf8)
            #expect(made.stdout == committed, "completions/\(file) differs: plash complete script \(shell) > completions/\(file)")
        }
    }

    /// What `plash complete line` offers where: the command table's operands and
    /// options, plash-exec's, and never an option of plash among a container's words.
    @Test func completeLineOffersWhatTheCommandTableDeclares() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        #expect(try store.plash(["map", "box", "1"]).status == 0)
        func offered(_ words: String...) throws -> [String] {
            let result = try store.plash(["complete", "line"] + words)
            #expect(result.status == 0, "\(words): \(result)")
            return lines(result.stdout).filter { !$0.isEmpty }
        }
        for command in ["run", "rm", "nodepath", "parent", "inspect", "mount", "export-tar", "export-oci", "export-docker-archive",
                        "push", "copy", "create", "with-mount", "runb", "add-layer", "kill"] {
            #expect(try offered("plash", command, "") == ["none", "1", "box"], "\(command)")
        }
        #expect(try offered("plash", "build", "--from", "") == ["none", "1", "box", "busybox"])
        #expect(try offered("plash", "build", "--from", "1", "") == ["none"])
        #expect(try offered("plash", "build", "--from", "1", "--run", "ls", "") == ["files"])
        #expect(try offered("plash", "export-tar", "--from", "1", "--", "") == ["files"])
        #expect(try offered("plash", "run", "1", "-") == ["files"])
        #expect(try offered("plash", "run", "--from", "1", "--", "") == ["files"])
        #expect(try offered("plash", "create", "1", "-") == ["files"])
        #expect(try offered("plash", "export-oci", "1", "") == ["files"])
        #expect(try offered("plash", "export-oci", "--tag", "") == ["none"])
        #expect(try offered("plash", "mount", "1", "") == ["directories"])
        #expect(try offered("plash", "import", "") == ["none", "busybox"])
        #expect(try offered("plash-exec", "--net", "") == ["none", "none"])
        #expect(try offered("plash-exec", "--root", "/", "") == ["files"])
        #expect(try offered("plash-exec", "1", "--", "") == ["files"])
        #expect(try offered("plash-exec", "-").contains("--root"))
        #expect(try offered("plash", "run", "-").contains("--memory"))
        #expect(try !offered("plash", "run", "-").contains("--root"))
    }
}
