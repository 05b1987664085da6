import Foundation
import PlashTestSupport
import Testing

/// Commands that scripts written for plash's first versions call (issue 12).
@Suite struct CompatTests {
    @Test func evalPrintsTheScriptTheMacrosExpandTo() throws {
        let store = TestStore()
        let result = try store.plash(["eval", "--eval-string", " --run mycmd"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "mycmd\n")
        #expect(try store.plash(["eval"], stdin: "--run\nfrom stdin\n").stdout == "from stdin\n")
        #expect(try store.plash(["eval", "--bogus"]).status == 2)
    }

    @Test func invalidateLayerAloneMakesAFreshEmptyLayer() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let first = try store.id(["build", "-f", "1", "--invalidate-layer"])
        let second = try store.id(["build", "-f", "1", "--invalidate-layer"])
        #expect(first != second)
        let node = try store.id(["nodepath", first])
        #expect(node.hasSuffix("/1/\(first)"))
        #expect(try store.plash(["run", first, "--", "true"]).status == 0)
        #expect(try store.id(["parent", second]) == "1")
    }

    @Test func createRunsACommandInANewLayerAndPrintsItsId() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let new = try store.id(["create", "1", "touch", "/created"])
        #expect(try store.plash(["run", new, "--", "ls", "/created"]).stdout == "/created\n")
        let fromStdin = try store.plash(["create", "1"], stdin: "echo hi > /stdin\n")
        #expect(fromStdin.status == 0, "\(fromStdin)")
        let id = fromStdin.stdout.trimmingCharacters(in: .newlines)
        #expect(try store.plash(["run", id, "cat", "/stdin"]).stdout == "hi\n")
        let failed = try store.plash(["create", "1", "sh", "-c", "exit 3"])
        #expect(failed.status == 1)
        #expect(failed.stderr.hasSuffix("plash: create failed: sh -c 'exit 3' exited with status 3\n"), "\(failed)")
        #expect(store.stagingDirectories.isEmpty)
        #expect(try store.plash(["create", "0"]).stderr == "plash: no image 0\n")
    }

    /// What plash-exec could not start, plash says once, with its context; a program's
    /// own 127 stays the program's.
    @Test func aCommandOrStepThatCannotStartIsOneLine() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let missing = try store.plash(["create", "1", "nosuch"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "--> nosuch\nplash: create failed: exec nosuch: No such file or directory\n", "\(missing)")
        let own = try store.plash(["create", "1", "sh", "-c", "exit 127"])
        #expect(own.stderr == "--> sh -c 'exit 127'\nplash: create failed: sh -c 'exit 127' exited with status 127\n", "\(own)")
        // An image without /bin/sh: the step cannot start.
        let empty = makeDirectory("no-shell")
        let shellless = try store.id(["add-layer", "0", empty])
        let step = try store.plash(["build", "--from-id", shellless, "--run", "true"])
        #expect(step.status == 1)
        #expect(step.stderr == "--> true\nplash: build failed: exec /bin/sh: No such file or directory\n", "\(step)")
        #expect(store.stagingDirectories.isEmpty)
    }

    @Test func commandsTakeMacrosInsteadOfAnImage() throws {
        let store = TestStore()
        let tar = makeDirectory() + "/out.tar"
        let result = try store.plash(["export-tar", "--from", "busybox", "--run", "touch /exported", "--", tar])
        #expect(result.status == 0, "\(result)")
        #expect(try shell("tar -tf '\(tar)' ./exported").stdout == "./exported\n")
        let created = try store.plash(["create", "-f", "busybox", "--", "touch", "/x"])
        #expect(created.status == 0, "\(created)")
        // As the original's `plash -f 1 -- CMD`: leading macros are plash run.
        #expect(try store.plash(["-f", "busybox", "--", "printf", "hi"]).stdout == "hi")
    }

    @Test func exportTarWritesToStdoutWithoutAFile() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let dir = makeDirectory()
        let result = try shell("PLASH_DATA='\(store.data)' '\(plash)' export-tar 1 > '\(dir)/a.tar' && tar -tf '\(dir)/a.tar' ./bin/sh")
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "./bin/sh\n")
    }

    @Test func addLayerMovesADirectoryIntoTheStore() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let dir = makeDirectory() + "/layer"
        try FileManager.default.createDirectory(atPath: dir + "/etc", withIntermediateDirectories: true)
        try "added\n".write(toFile: dir + "/etc/added", atomically: false, encoding: .utf8)
        let id = try store.id(["add-layer", "1", dir])
        #expect(!FileManager.default.fileExists(atPath: dir))
        #expect(try store.plash(["run", id, "cat", "/etc/added"]).stdout == "added\n")
        let empty = makeDirectory()
        let root = try store.id(["add-layer", "0", empty])
        #expect(try store.id(["parent", root]) == "0")
        let missing = try store.plash(["add-layer", "1", "/does/not/exist"])
        #expect(missing.status == 1 && missing.stderr.hasPrefix("plash: add-layer /does/not/exist: "), "\(missing)")
    }

    @Test func copyWritesTheFilesIntoANewOrEmptyDirectory() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "echo c > /copied"])
        let dir = makeDirectory()
        #expect(try store.plash(["copy", id, dir]).status == 0)
        #expect(try String(contentsOfFile: dir + "/copied", encoding: .utf8) == "c\n")
        #expect(FileManager.default.fileExists(atPath: dir + "/bin/sh"))
        let full = try store.plash(["copy", id, dir])
        #expect(full.status == 1)
        #expect(full.stderr == "plash: copy: \(dir) is not empty\n")
        #expect(try String(contentsOfFile: dir + "/copied", encoding: .utf8) == "c\n")
    }

    @Test func withMountRunsAHostCommandInTheMountedImage() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "echo m > /mounted"])
        let result = try store.plash(["with-mount", id, "sh", "-c", "cat mounted && test \"$PWD\" = \"$PLASH_MOUNT\""])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "m\n")
        #expect(try store.plash(["with-mount", id, "sh", "-c", "exit 7"]).status == 7)
        let missing = try store.plash(["with-mount", id, "cmdnotfound"])
        #expect(missing.status == 127)
        #expect(missing.stderr == "cmdnotfound: command not found\n")
        #expect(try hostMounts().allSatisfy { !$0.contains(store.data) })
        #expect(store.stagingDirectories.isEmpty)
    }

    @Test func runbKeepsTheWritesInChangesdir() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let changes = makeDirectory() + "/changes"
        #expect(try store.plash(["runb", "1", changes, "touch", "/kept"]).status == 0)
        #expect(FileManager.default.fileExists(atPath: changes + "/kept"))
    }

    /// Started from a directory, with a $HOME and /home entries the image lacks: the
    /// mount points made for them are not among the writes.
    @Test func runbLeavesNoMountPointsInChangesdir() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let changes = makeDirectory() + "/changes"
        let result = try store.plash(["runb", "1", changes, "sh", "-c", "cat /etc/hosts >/dev/null && touch /kept"])
        #expect(result.status == 0, "\(result)")
        #expect(try shell("cd '\(changes)' && find . -mindepth 1 | sort").stdout == "./kept\n")
    }

    @Test func dataRunsACommandInTheStore() throws {
        let store = TestStore()
        #expect(try store.plash(["init"]).status == 0)
        #expect(try store.plash(["data", "pwd"]).stdout == store.data + "\n")
        #expect(try store.plash(["data", "touch", "config/testmode"]).status == 0)
        #expect(FileManager.default.fileExists(atPath: store.data + "/config/testmode"))
        #expect(try store.plash(["data", "cmdnotfound"]).status == 127)
    }

    @Test func sudoWithoutACommandOpensTheUsersShell() throws {
        let result = try TestStore().plash(["sudo"], stdin: "echo itsashell; id -u\n")
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "itsashell\n0\n")
        let missing = try TestStore().plash(["sudo", "cmdnotfound"])
        #expect(missing.status == 127, "\(missing)")
    }

    /// Host commands that plash runs for the user fail as a shell's would.
    @Test func aHostCommandNotFoundSaysSoAsAShellDoes() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        for command in [["sudo"], ["with-mount", "1"], ["data"]] {
            let result = try store.plash(command + ["cmdnotfound"])
            #expect(result.status == 127, "\(result)")
            #expect(result.stderr == "cmdnotfound: command not found\n", "\(command)")
        }
        let notExecutable = try store.plash(["sudo", "/etc/passwd"])
        #expect(notExecutable.status == 126 && notExecutable.stderr.hasPrefix("plash: sudo: run /etc/passwd: "), "\(notExecutable)")
    }

    @Test func mapWithAnEmptyImageRemovesTheName() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        #expect(try store.plash(["map", "rkey", "1"]).status == 0)
        #expect(try store.plash(["map", "rkey", ""]).status == 0)
        #expect(try store.plash(["map", "rkey", ""]).status == 0)
        #expect(try store.plash(["map", "bad/name", ""]).status == 1)
    }

    /// As the original: `test -z "$(plash map NAME)"` asks whether NAME is set.
    @Test func mapOfANameThatNamesNothingPrintsNothing() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let never = try store.plash(["map", "myfavorite"])
        #expect(never.status == 0 && never.stdout.isEmpty && never.stderr.isEmpty, "\(never)")
        #expect(try store.plash(["map", "rkey", "1"]).status == 0)
        #expect(try store.plash(["map", "rkey"]).stdout == "1\n")
        #expect(try store.plash(["map", "rkey", ""]).status == 0)
        let removed = try store.plash(["map", "rkey"])
        #expect(removed.status == 0 && removed.stdout.isEmpty, "\(removed)")
        #expect(try store.plash(["map", "bad/name"]).status == 1)
        #expect(try store.plash(["build", "--from-map", "rkey"]).status != 0)
    }

    @Test func importTarReadsStdinWithoutAFile() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox", "--run", "touch /x"])
        let result = try shell("PLASH_DATA='\(store.data)' '\(plash)' export-tar 2 | PLASH_DATA='\(store.data)' '\(plash)' import-tar")
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "3\n")
    }

    /// The original's `runopts -c IMAGE -d CHANGESDIR -m PATH CMD`: plash-exec's --persist
    /// and --bind-try, and nothing else of the host's shared.
    @Test func runoptsRunsWithTheOriginalsOptions() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let changes = makeDirectory()
        let shared = makeDirectory()
        try "host\n".write(toFile: shared + "/file", atomically: false, encoding: .utf8)
        let result = try store.plash(["runopts", "-c", "1", "-d", changes, "-m", shared, "-m", "/doesnotexist", "--",
                                      "sh", "-c", "cat \(shared)/file; touch /new; ls /tmp | wc -l; test -e /doesnotexist || echo skipped"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "host\n0\nskipped\n")
        #expect(try shell("cd '\(changes)' && find . -mindepth 1 | sort").stdout == "./new\n")
        #expect(try store.plash(["runopts", "-c1", "sh", "-c", "exit 7"]).status == 7)
        #expect(try store.plash(["runopts", "1", "true"]).status == 2)
        #expect(try store.plash(["runopts", "-c", "99999", "true"]).status == 125)
    }

    /// The original's `clean --clean-tmp`, `--clean-cache-keys`, `--clean-index`: each
    /// cleans its part only.
    @Test func cleanFlagsOfTheOriginalCleanOnePartEach() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "touch /a"])
        #expect(try store.plash(["map", "thing", id]).status == 0)
        #expect(try store.plash(["rm", id]).status == 0)
        _ = try shell("mkdir '\(store.data)/tmp/left-by-a-kill' && ln -s ../layer/0/77 '\(store.data)/index/77'")
        func link(_ path: String) -> Bool { (try? FileManager.default.destinationOfSymbolicLink(atPath: store.data + path)) != nil }
        #expect(try store.plash(["clean", "--clean-tmp"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: store.data + "/tmp/left-by-a-kill"))
        #expect(link("/map/thing") && link("/index/77"))
        #expect(try store.plash(["clean", "--clean-cache-keys"]).status == 0)
        #expect(!link("/map/thing") && link("/index/77"))
        #expect(try store.plash(["clean", "--clean-index"]).status == 0)
        #expect(!link("/index/77"))
        #expect(try store.plash(["clean", "--clean-everything"]).status == 2)
    }

    /// As the original's: purge empties the store's directory and ids start over; only
    /// `y` confirms.
    @Test func purgeEmptiesTheStoreAndIdsStartOver() throws {
        let store = TestStore()
        #expect(try store.id(["build", "--from", "busybox", "--run", "touch /a"]) == "2")
        let refused = try store.plash(["purge"], stdin: "yes\n")
        #expect(refused.status == 0 && store.indexedIDs == [1, 2], "\(refused)")
        let purged = try store.plash(["purge"], stdin: "y\n")
        #expect(purged.status == 0 && purged.stderr.hasSuffix("plash: removed images 1 2\n"), "\(purged)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.data) == [])
        #expect(try store.plash(["purge", "--yes"]).status == 0)
        #expect(try store.id(["build", "--from", "busybox"]) == "1")
    }

    /// The original's root container: index/0 is there, names the empty root, and is no
    /// image for any command; clean keeps it.
    @Test func indexZeroNamesTheEmptyRootAndIsNoImage() throws {
        let store = TestStore()
        #expect(try store.plash(["init"]).status == 0)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: store.data + "/index/0") == "../layer/0")
        #expect(try store.plash(["clean"]).status == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.data + "/index") == ["0"])
        for command in [["nodepath", "0"], ["rm", "0"], ["run", "0", "true"], ["map", "x", "0"], ["parent", "0"]] {
            #expect(try store.plash(command).status != 0, "\(command)")
        }
        #expect(FileManager.default.fileExists(atPath: store.data + "/layer/0"))
    }

    @Test func replacedCommandsSayWhatToUseInstead() throws {
        let store = TestStore()
        for (command, word) in [("shallow-copy", "plash copy"),
                                ("help-macros", "plash help macros")] {
            let result = try store.plash([command, "x"])
            #expect(result.status == 2, "\(command)")
            #expect(result.stderr.hasPrefix("plash: ") && result.stderr.contains(word), "\(result)")
            #expect(!result.stderr.contains("unknown"), "\(result)")
        }
    }

    @Test func importEnvAndHashPathWorkInABuild() throws {
        let store = TestStore()
        let result = try store.plash(["build", "-f", "busybox", "--import-env", "MYENV", "--run", "test \"$MYENV\" = 123"],
                                     environment: ["MYENV": "123"])
        #expect(result.status == 0, "\(result)")
    }

    /// --apt's script is the original's; apt still never prompts: every build step gets
    /// DEBIAN_FRONTEND=noninteractive, which --import-env may override.
    @Test func buildStepsRunWithANoninteractiveDebianFrontend() throws {
        let store = TestStore()
        let id = try store.id(["build", "-f", "busybox", "--run", "echo $DEBIAN_FRONTEND > /frontend"])
        #expect(try store.plash(["run", id, "cat", "/frontend"]).stdout == "noninteractive\n")
        let own = try store.plash(["build", "-f", "busybox", "--import-env", "DEBIAN_FRONTEND", "--run", "echo $DEBIAN_FRONTEND > /f"],
                                  environment: ["DEBIAN_FRONTEND": "readline"])
        #expect(own.status == 0, "\(own)")
        #expect(try store.plash(["run", own.stdout.trimmingCharacters(in: .newlines), "cat", "/f"]).stdout == "readline\n")
        #expect(try store.plash(["run", id, "sh", "-c", "echo ${DEBIAN_FRONTEND-unset}"]).stdout == "unset\n")
    }

    @Test func runAppliesMountUseEnvAndEnvPrefix() throws {
        let store = TestStore()
        let dir = makeDirectory()
        try "shared\n".write(toFile: dir + "/file", atomically: false, encoding: .utf8)
        let result = try store.plash(["run", "-f", "busybox", "--mount", "\(dir):/srv", "--hint", "use-env", "ONE",
                                      "--env-prefix", "PFX_", "--", "sh", "-c", "cat /srv/file; echo $ONE $PFX_A $PFX_B $OTHER"],
                                     environment: ["ONE": "1", "PFX_A": "a", "PFX_B": "b", "OTHER": "o"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "shared\n1 a b\n")
    }

    /// Runs a Plashfile the way the kernel does: its #! line names the interpreter.
    func runPlashfile(_ file: String, _ arguments: [String], store: TestStore, directory: String? = nil) throws -> Finished {
        try runWrittenFile(file, arguments, environment: store.environment.merging(
            ["PATH": productsDirectory.path + ":/usr/sbin:/usr/bin:/sbin:/bin", "MYENV": "111"]) { $1 }, directory: directory)
    }

    @Test func aPlashfileForPlashExecIsHandedToPlash() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let file = makeDirectory() + "/Plashfile"
        try writeExecutable(file, """
            #!/usr/bin/env plash-exec
            --from 1
            --hint use-env MYENV
            --entrypoint-script
            echo "$MYENV"
            echo "$@"
            """)
        let result = try runPlashfile(file, ["arg"], store: store)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "111\narg\n", "\(result)")
    }

    /// As the original's plash-exec: such a Plashfile runs its entrypoint, so without one
    /// it fails, building nothing; one for plash runs its arguments instead.
    @Test func aPlashfileForPlashExecWithoutAnEntrypointFails() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let file = makeDirectory() + "/Plashfile"
        try writeExecutable(file, "#!/usr/bin/env plash-exec\n--from\n1\n--run\ntouch /built\n")
        let result = try runPlashfile(file, ["echo", "ran"], store: store)
        #expect(result.status != 0 && result.stdout.isEmpty, "\(result)")
        #expect(result.stderr.hasPrefix("plash: \(file): no --entrypoint"), "\(result)")
        #expect(store.indexedIDs == [1])
        let ours = makeDirectory() + "/Plashfile"
        try writeExecutable(ours, "#!/usr/bin/env plash\n--from\n1\n")
        #expect(try runPlashfile(ours, ["echo", "ran"], store: store).stdout == "ran\n")
    }

    @Test func pathsInAPlashfileAreRelativeToItsDirectory() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let dir = makeDirectory()
        try "--run\necho included > /included\n".write(toFile: dir + "/more", atomically: false, encoding: .utf8)
        try "v1\n".write(toFile: dir + "/hashed", atomically: false, encoding: .utf8)
        try writeExecutable(dir + "/Plashfile", """
            #!/usr/bin/env plash
            --from 1
            --eval-file more
            --hash-path hashed
            --run
            pwd > /built-in
            --entrypoint-script
            cat /included /built-in
            pwd
            """)
        let caller = makeDirectory()
        let result = try runPlashfile(dir + "/Plashfile", [], store: store, directory: caller)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "included\n\(dir)\n\(caller)\n")
    }

    /// From the repository's default branch, whatever its name: GitHub's `HEAD` (the
    /// server here has no `master`).
    @Test func fromGithubAndEvalGithubFetchAPlashfileOfTheDefaultBranchFromTheBaseURL() throws {
        let store = TestStore()
        let root = makeDirectory()
        let repository = root + "/someone/project/HEAD"
        try FileManager.default.createDirectory(atPath: repository, withIntermediateDirectories: true)
        try "--from busybox\n--run\necho built > /gh\n".write(toFile: repository + "/plashfile", atomically: false, encoding: .utf8)
        try "--run\necho evaluated > /ev\n".write(toFile: repository + "/more", atomically: false, encoding: .utf8)
        let server = try HTTPServer(root: root)
        defer { server.stop() }
        let base = ["PLASH_GITHUB_URL": "http://127.0.0.1:\(server.port)"]
        let result = try store.plash(["run", "--from-github", "someone/project", "--eval-github", "someone/project", "more",
                                      "--", "cat", "/gh", "/ev"], environment: base)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "built\nevaluated\n")
        let missing = try store.plash(["build", "--from-github", "someone/nothing"], environment: base)
        #expect(missing.status == 1, "\(missing)")
        #expect(missing.stderr == "plash: --from-github http://127.0.0.1:\(server.port)/someone/nothing/HEAD/plashfile: HTTP 404 Not Found\n", "\(missing)")
    }

    @Test func evalURLReadsMacrosFromAnHTTPURL() throws {
        let store = TestStore()
        let root = makeDirectory()
        try "--run\necho fetched > /u\n".write(toFile: root + "/macros", atomically: false, encoding: .utf8)
        let server = try HTTPServer(root: root)
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)/macros"
        let result = try store.plash(["run", "--from", "busybox", "--eval-url", url, "--", "cat", "/u"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "fetched\n")
        let missing = try store.plash(["build", "--from", "busybox", "--eval-url", url + "-not-there"])
        #expect(missing.stderr == "plash: --eval-url \(url)-not-there: HTTP 404 Not Found\n", "\(missing)")
        #expect(try store.plash(["build", "--eval-url", "ftp://x/y"]).status == 2)
    }

    @Test func runPassesDisplayAndLeadingAssignments() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let result = try store.plash(["run", "1", "MYV=101", "B=", "sh", "-c", "echo $MYV $DISPLAY ${B-unset}"],
                                     environment: ["DISPLAY": ":7"])
        #expect(result.stdout == "101 :7\n", "\(result)")
        #expect(try store.plash(["run", "1", "--", "=x"]).status == 127)
    }

    @Test func helpListsTheOriginalsCommandsAndMacros() throws {
        let store = TestStore()
        let commands = try store.plash(["help"]).stdout
        for command in ["eval", "create", "add-layer", "copy", "with-mount", "runb", "data", "sudo", "import-tar", "export-tar"] {
            #expect(commands.contains("\n  \(command) "), "\(command)")
        }
        let macros = try store.plash(["help", "macros"]).stdout
        for macro in ["--import-env", "--env-prefix", "--mount", "--hint", "--defpm", "--#", "--from-github", "--eval-github",
                      "--from-lxc", "--from-url", "--from-docker", "--eval-url", "--add-apt-repository", "-C"] {
            #expect(macros.contains("\n  \(macro) "), "\(macro)")
        }
    }

    @Test func theOriginalsCommandsWorkForAnOrdinaryUser() throws {
        let user = try userWithSubordinateIDs
        let cwd = makeDirectory("compat", ownedBy: user)
        let data = cwd + "/store"
        let id = try plashAs(user, ["build", "--from", "busybox", "--run", "echo u > /u"], data: data, directory: cwd)
        #expect(id.status == 0, "\(id)")
        let image = id.stdout.trimmingCharacters(in: .newlines)
        let created = try plashAs(user, ["create", image, "touch", "/c"], data: data, directory: cwd)
        #expect(created.status == 0, "\(created)")
        let mounted = try plashAs(user, ["with-mount", image, "cat", "u"], data: data, directory: cwd)
        #expect(mounted.stdout == "u\n", "\(mounted)")
        #expect(try plashAs(user, ["copy", image, cwd + "/copy"], data: data, directory: cwd).status == 0)
        #expect(FileManager.default.fileExists(atPath: cwd + "/copy/u"))
        #expect(try plashAs(user, ["sudo", "id", "-u"], data: data, directory: cwd).stdout == "0\n")
        #expect(try rootOwnedFiles([data, cwd]) == "")
    }

    @Test func runWithoutACommandRunsRootsShellFromTheImage() throws {
        let store = TestStore()
        let own = try store.id(["build", "--from", "busybox", "--write-script", "/bin/rootshell", "#!/bin/sh", "echo root shell $#",
                                "--run", "sed -i 's|^root:.*|root:x:0:0:root:/root:/bin/rootshell|' /etc/passwd"])
        let result = try store.plash(["run", own])
        #expect(result.stdout == "root shell 0\n", "\(result)")
        let missing = try store.id(["build", "--from", "busybox",
                                    "--run", "sed -i 's|^root:.*|root:x:0:0:root:/root:/bin/nothing|' /etc/passwd"])
        #expect(try store.plash(["run", missing], stdin: "echo fallback\n").stdout == "fallback\n")
        let hidden = try store.id(["build", "--from", own, "--run", "rm /etc/passwd"])
        #expect(try store.plash(["run", hidden], stdin: "echo no passwd\n").stdout == "no passwd\n")
    }
}
