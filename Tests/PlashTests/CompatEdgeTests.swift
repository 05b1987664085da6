import Foundation
import PlashTestSupport
import Testing

/// The original's commands and Plashfiles tried as its users, and hostile ones, would
/// (issue 12's check): odd input fails with one line and loses nothing.
@Suite struct CompatEdgeTests {
    /// add-layer renames DIR: a DIR in the store (reached directly or through a symlink)
    /// would move an image's files away, a symlink would make the image the host's directory.
    @Test func addLayerRefusesTheStoresOwnDirectoriesAndSymlinks() throws {
        let store = TestStore()
        let two = try store.id(["build", "--from", "busybox", "--run", "echo two > /two"])
        let node = try store.id(["nodepath", two])
        let link = makeDirectory() + "/link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: node)
        let host = makeDirectory()
        let hostLink = makeDirectory() + "/host"
        try FileManager.default.createSymbolicLink(atPath: hostLink, withDestinationPath: host)
        for dir in [node + "/_data", link + "/_data", store.data + "/tmp", store.data] {
            let result = try store.plash(["add-layer", "1", dir])
            #expect(result.status == 1 && result.stderr.hasPrefix("plash: add-layer \(dir): lies in the store "), "\(result)")
        }
        let symlink = try store.plash(["add-layer", "1", hostLink])
        #expect(symlink.status == 1 && symlink.stderr == "plash: add-layer \(hostLink): not a directory\n", "\(symlink)")
        #expect(store.indexedIDs == [1, 2])
        #expect(try store.plash(["run", two, "cat", "/two"]).stdout == "two\n")
    }

    /// copy writes into DIR: in the store it would add files to an image.
    @Test func copyRefusesADirectoryInTheStore() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let node = try store.id(["nodepath", "1"])
        for dir in [node + "/_data/new", store.data + "/tmp/copy"] {
            let result = try store.plash(["copy", "1", dir])
            #expect(result.status == 1 && result.stderr.hasPrefix("plash: copy \(dir): lies in the store "), "\(result)")
            #expect(!FileManager.default.fileExists(atPath: dir))
        }
    }

    /// An export written into the store would land in an image's files (export-tar 1
    /// …/_data/x.tar made /x.tar appear in image 1) or in tmp/, which clean removes.
    @Test func exportsRefuseAFileInTheStore() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let node = try store.id(["nodepath", "1"])
        for command in ["export-tar", "export-oci", "export-docker-archive"] {
            for target in [node + "/_data/out", store.data + "/tmp/out"] {
                let result = try store.plash([command, "1", target])
                #expect(result.status == 1 && result.stderr.hasPrefix("plash: \(command) \(target): lies in the store "), "\(result)")
                #expect(!FileManager.default.fileExists(atPath: target))
            }
        }
        #expect(try store.plash(["export-tar", "1", makeDirectory("export-outside") + "/out.tar"]).status == 0)
    }

    /// Runs a Plashfile the way the kernel does: its #! line names the interpreter.
    func runPlashfile(_ file: String, _ arguments: [String], store: TestStore) throws -> Finished {
        try runWrittenFile(file, arguments, environment: store.environment.merging(
            ["PATH": productsDirectory.path + ":/usr/sbin:/usr/bin:/sbin:/bin"]) { $1 })
    }

    /// The original ran a layer as one script: an old Plashfile's --run block may cd,
    /// set variables, span if...fi and here-documents over its lines.
    @Test func theLinesOfARunBlockAreOneScript() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let file = makeDirectory() + "/Plashfile"
        try writeExecutable(file, """
            #!/usr/bin/env plash-exec
            --from 1
            --run
            cd /etc
            greeting=hello
            if true; then
              echo "$greeting $PWD" > /out
            fi
            cat >> /out <<END
            # kept
                indented
            END
            echo \\
              -n continued >> /out
            --entrypoint cat /out
            """)
        let result = try runPlashfile(file, [], store: store)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "hello /etc\n# kept\n    indented\ncontinued", "\(result)")
    }

    /// An indented line of a --run block is the script's, whatever follows its tab or
    /// spaces: `-x` (the short name of --run), `--foo`, `--entrypoint` are arguments of
    /// the command that the line before continues, not macros.
    @Test func indentedLinesOfARunBlockThatStartWithADashStayScriptLines() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let file = makeDirectory() + "/Plashfile"
        try writeExecutable(file, """
            #!/usr/bin/env plash-exec
            --from 1
            --run
            \tprintf '%s\\n' tab > /out
            printf '%s\\n' \\
            \t-x \\
              --foo \\
            \t  --entrypoint \\
               -- >> /out
            --entrypoint cat /out
            """)
        let result = try runPlashfile(file, [], store: store)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "tab\n-x\n--foo\n--entrypoint\n--\n", "\(result)")
    }

    /// The lines of a file (--write-file, --entrypoint-script) are kept as written: a
    /// '#' line is a line (a config's comment, a script's own #!), indentation stays.
    @Test func fileLinesKeepCommentsIndentationAndTheirOwnShebang() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let file = makeDirectory() + "/Plashfile"
        try writeExecutable(file, """
            #!/usr/bin/env plash-exec
            --from 1
            --write-file /etc/conf
            # a comment of the config
            key=value
              indented=1
            --entrypoint-script
            #!/bin/cat
            printed by cat
            """)
        let result = try runPlashfile(file, [], store: store)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "#!/bin/cat\nprinted by cat\n", "\(result)")
        // The image's entrypoint is the script: a command after the image would be its
        // arguments, so --entrypoint '' runs cat itself.
        let id = try store.id(["build", "--eval-file", file])
        #expect(try store.plash(["run", "--entrypoint", "", id, "cat", "/etc/conf"]).stdout
                == "# a comment of the config\nkey=value\n  indented=1\n")
        let command = try store.id(["build", "-f", "1", "--entrypoint-script", "#!/bin/cat", "x"])
        #expect(try store.plash(["run", "--entrypoint", "", command, "cat", "/.plash-entrypoint"]).stdout == "#!/bin/cat\nx\n")
        // Without a command, the image runs its entrypoint, as the Plashfile does.
        #expect(try store.plash(["run", command]).stdout == "#!/bin/cat\nx\n")
    }

    /// A Plashfile line `--mount /a /b` gives two words; a word of the command line is
    /// one path, spaces and all.
    @Test func mountTakesAPathWithSpacesFromTheCommandLine() throws {
        let store = TestStore()
        let dir = makeDirectory() + "/a dir"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "spaced\n".write(toFile: dir + "/f", atomically: false, encoding: .utf8)
        let result = try store.plash(["run", "-f", "busybox", "--mount", dir + ":/x", "--mount", dir, "--",
                                      "cat", "/x/f", dir + "/f"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "spaced\nspaced\n")
    }

    /// A server that sends without end must not fill plash's memory: macros fetched
    /// over HTTP are at most 1 MiB.
    @Test func evalURLRefusesAnAnswerLargerThanAPlashfile() throws {
        let store = TestStore()
        let root = makeDirectory()
        try Data(repeating: UInt8(ascii: "#"), count: 2 << 20).write(to: URL(fileURLWithPath: root + "/huge"))
        let server = try HTTPServer(root: root)
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)/huge"
        let result = try store.plash(["build", "--from", "busybox", "--eval-url", url])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr == "plash: --eval-url \(url): larger than 1.0 MiB (PLASH_HTTP_MAX_MEMORY=BYTES raises the limit)\n", "\(result)")
        #expect(store.indexedIDs.isEmpty)
    }

    /// Every command and macro of the original is in plash help or plash help macros,
    /// and the replaced ones say what replaced them, in one line, not "unknown".
    @Test func helpNamesEveryCommandAndMacroOfTheOriginal() throws {
        // A line starts with the name, or a list of names holds it: `  --run, -x CMD...`.
        func lists(_ text: String, _ name: String) -> Bool {
            [" ", ",", ":"].contains { text.contains("\n  \(name)\($0)") || text.contains(", \(name)\($0)") }
        }
        let store = TestStore()
        let commands = try store.plash(["help"]).stdout
        for command in ["add-layer", "build", "clean", "copy", "create", "data", "eval", "export-tar", "help", "help-macros",
                        "import-docker", "import-lxc", "import-tar", "import-url", "init", "map", "mount", "nodepath",
                        "parent", "purge", "rm", "run", "runopts", "shallow-copy", "shrink", "sudo", "test", "version",
                        "with-mount", "runb", "list-macros", "mkdtemp"] {
            #expect(lists(commands, command), "\(command)")
        }
        let macros = try store.plash(["help", "macros"]).stdout
        for macro in ["--layer", "--run", "--import-env", "--invalidate-layer", "--write-file", "--write-script",
                      "--eval-file", "--eval-string", "--eval-stdin", "--run-stdin", "--hash-path", "--entrypoint",
                      "--entrypoint-script", "--from-docker", "--from-lxc", "--from-url", "--from-id", "--from-map", "--from",
                      "--from-github", "--defpm", "--apt", "--add-apt-repository", "--apk", "--yum", "--dnf", "--pip",
                      "--pip3", "--npm", "--pacman", "--emerge", "-x", "-l", "-f", "-A", "-U", "-F", "-D", "-C", "-R", "-G",
                      "--import", "--reset-imports", "--hint"] {
            #expect(lists(macros, macro), "\(macro)")
        }
        for macro in ["--import", "--reset-imports"] {
            let result = try store.plash(["build", "-f", "busybox", macro, "plash.macros.all"])
            #expect(result.status == 2 && result.stderr.hasPrefix("plash: \(macro) ") && !result.stderr.contains("unknown"),
                    "\(result)")
        }
    }

    /// A Plashfile reached through a symlink (from ~/bin) reads the files beside itself.
    @Test func aPlashfileThroughASymlinkReadsFilesBesideItself() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let dir = makeDirectory()
        try "--run\necho included > /included\n".write(toFile: dir + "/more", atomically: false, encoding: .utf8)
        try writeExecutable(dir + "/Plashfile", "#!/usr/bin/env plash-exec\n--from 1\n--eval-file more\n--hash-path more\n--entrypoint cat /included\n")
        let link = makeDirectory() + "/tool"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: dir + "/Plashfile")
        let result = try runPlashfile(link, [], store: store)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "included\n")
    }

    /// The original's `nodepath ID --allow-root-container`: 0, the empty root, is a node.
    @Test func nodepathTakesTheOriginalsAllowRootContainerOption() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let root = try store.plash(["nodepath", "0", "--allow-root-container"])
        #expect(root.status == 0 && root.stdout == store.data + "/layer/0\n", "\(root)")
        #expect(try store.id(["nodepath", "1", "--allow-root-container"]) == store.data + "/layer/0/1")
        #expect(try store.plash(["nodepath", "0"]).status == 1)
        #expect(try store.plash(["nodepath", "0", "--allow-root-containers"]).status == 2)
    }

    /// The original's `mount IMAGE DIR CHANGESDIR` mounted writable; here a mount is
    /// read-only and the third argument says what to use instead.
    @Test func mountWithTheOriginalsChangesdirSaysWhatToUse() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let result = try store.plash(["mount", "1", makeDirectory(), makeDirectory()])
        #expect(result.status == 2 && result.stderr.contains("plash runb IMAGE CHANGESDIR"), "\(result)")
        #expect(try hostMounts().allSatisfy { !$0.contains(store.data) })
    }
}
