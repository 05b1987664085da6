import Foundation
import PlashTestSupport
import Testing

/// scripts/install and scripts/uninstall into a scratch PREFIX, then what people do with
/// the result: man, plash doctor, tab completion, as root and as an ordinary user.
@Suite struct InstallTests {
    let installed = ["bin/plash", "bin/plash-builder", "bin/plash-exec", "share/man/man1/plash.1", "share/man/man1/plash-builder.1", "share/man/man1/plash-exec.1",
                     "share/man/man7/plash-macros.7", "share/bash-completion/completions/plash",
                     "share/bash-completion/completions/plash-exec", "share/zsh/site-functions/_plash",
                     "share/fish/vendor_completions.d/plash.fish", "share/fish/vendor_completions.d/plash-exec.fish",
                     "share/doc/plash/docs/plash.md", "share/doc/plash/docs/limits.md"]

    /// A PREFIX that every user can read, with plash installed into it.
    func install() throws -> String {
        let prefix = makeDirectory("prefix")
        chmod(prefix, 0o755)
        let result = try run(repositoryDirectory + "/scripts/install", [prefix],
                             environment: ["PLASH_BINARIES": productsDirectory.path])
        #expect(result.status == 0, "\(result)")
        return prefix
    }

    @Test func installPutsEveryFileInPlaceAndUninstallRemovesThemButNotTheStore() throws {
        let prefix = try install()
        for file in installed {
            #expect(FileManager.default.fileExists(atPath: prefix + "/" + file), "\(file)")
        }
        #expect(FileManager.default.isExecutableFile(atPath: prefix + "/bin/plash-exec"))
        let store = TestStore()
        #expect(try run(prefix + "/bin/plash", ["import", "busybox"], environment: store.environment).status == 0)
        let removed = try run(repositoryDirectory + "/scripts/uninstall", [prefix])
        #expect(removed.status == 0, "\(removed)")
        for file in installed {
            #expect(!FileManager.default.fileExists(atPath: prefix + "/" + file), "\(file)")
        }
        #expect(store.indexedIDs == [1])
    }

    @Test func uninstallRemovesTheDirectoriesInstallMadeAndKeepsThoseThatWereThere() throws {
        let parent = makeDirectory("prefix")
        let prefix = parent + "/new/plash"
        let before = ["bin", "share/zsh/site-functions"]
        for dir in before.map({ parent + "/old/" + $0 }) { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        for prefix in [prefix, parent + "/old"] {
            #expect(try run(repositoryDirectory + "/scripts/install", [prefix], environment: ["PLASH_BINARIES": productsDirectory.path]).status == 0)
            #expect(try run(repositoryDirectory + "/scripts/uninstall", [prefix]).status == 0)
        }
        let left = try shell("cd '\(parent)' && find . -mindepth 1 | sort").stdout
        #expect(left == "./old\n./old/bin\n./old/share\n./old/share/zsh\n./old/share/zsh/site-functions\n", "\(left)")
    }

    @Test func installRejectsARelativePrefix() throws {
        let result = try run(repositoryDirectory + "/scripts/install", ["relative"],
                             environment: ["PLASH_BINARIES": productsDirectory.path])
        #expect(result.status == 2)
        #expect(result.stderr == "install: PREFIX must be an absolute path: relative\n")
    }

    @Test func manFindsTheInstalledPagesThroughPathForRootAndAUser() throws {
        let prefix = try install()
        for (page, name) in [("plash", "plash - build layered images"), ("plash-builder", "plash - build layered images"),
                             ("plash-exec", "plash-exec - run a program"), ("plash-macros", "plash-macros - the macros")] {
            let env = ["PATH": prefix + "/bin:/usr/bin:/bin", "MANPAGER": "cat", "MANWIDTH": "200"]
            let user = try userWithoutSubordinateIDs
            for result in [try run("/usr/bin/man", [page], environment: env),
                           try user.run("/usr/bin/man", [page], environment: env, directory: user.home)] {
                #expect(result.status == 0, "\(page): \(result)")
                #expect(result.stdout.contains(name), "\(page): \(result.stdout.prefix(500))")
            }
        }
    }

    @Test func theInstalledPlashFindsItsPlashExecAndPassesDoctor() throws {
        let prefix = try install()
        let store = TestStore()
        let built = try run(prefix + "/bin/plash", ["build", "--from", "busybox", "--run", "true"],
                            environment: store.environment.merging(["PATH": "/usr/bin:/bin"]) { $1 })
        #expect(built.status == 0, "\(built)")
        let doctor = try run(prefix + "/bin/plash", ["doctor"], environment: store.environment)
        #expect(doctor.status == 0, "\(doctor)")
        #expect(doctor.stdout.afterFirstLine.hasPrefix("ok    plash-exec: \(prefix)/bin/plash-exec\n"), "\(doctor)")
    }

    /// Runs `plash WORDS<TAB>` through the installed bash completion, loaded the way
    /// bash-completion loads it on first use, and returns COMPREPLY per line.
    func bashCompletions(_ prefix: String, _ lines: [String], user: TestUser? = nil,
                         environment: [String: String]) throws -> [String] {
        let script = """
            source /usr/share/bash-completion/bash_completion
            _completion_loader plash
            _completion_loader plash-exec
            complete -p plash
            complete -p plash-exec
            complete_words() {
                COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
                COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
                _plash "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
                echo "${COMPREPLY[*]}"
            }
            # As bash splits a line at COMP_WORDBREAKS: complete_split LINE WORD...
            complete_split() {
                COMP_LINE=$1; COMP_POINT=${#COMP_LINE}; shift
                COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
                _plash "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
                echo "${COMPREPLY[*]}"
            }
            \(lines.map { $0.hasPrefix("complete_") ? $0 : "complete_words \($0)" }.joined(separator: "\n"))
            """
        let file = makeDirectory("completion") + "/test.sh"
        try script.write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
        chmod(splitParent(file), 0o755)
        var env = environment
        env["PATH"] = prefix + "/bin:/usr/bin:/bin"
        env["XDG_DATA_DIRS"] = prefix + "/share"
        let arguments = ["--norc", "--noprofile", "-i", file]
        let result = try user.map { try $0.run("/bin/bash", arguments, environment: env, directory: $0.home) }
            ?? run("/bin/bash", arguments, environment: env)
        #expect(result.status == 0, "\(result)")
        return result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    func splitParent(_ path: String) -> String { URL(fileURLWithPath: path).deletingLastPathComponent().path }

    // Images wherever a command takes one (export-oci and push had none once), busybox
    // after --from, nothing of plash's after run's IMAGE, plash-exec's options.
    static let completionLines = ["plash bu", "plash run ''", "plash build --ap", "plash build --from ''",
                                  "plash ls -", "plash help ma", "plash export-oci ''", "plash push ''", "plash run 1 --",
                                  "plash-exec --net ''", "plash-exec --ro", "plash-exec ''",
                                  "complete_split 'plash run --bind /a:/b ' plash run --bind /a : /b ''"]
    static let expected = ["complete -F _plash plash", "complete -F _plash plash-exec", "build", "1 box", "--apt --apk",
                           "1 box busybox", "--json --help", "macros map", "1 box", "1 box", "", "none",
                           "--root --ro-bind --ro-share", "1 box", "1 box"]

    @Test func bashCompletesCommandsMacrosOptionsAndImagesForRoot() throws {
        let prefix = try install()
        let store = TestStore()
        #expect(try run(prefix + "/bin/plash", ["import", "busybox"], environment: store.environment).status == 0)
        #expect(try run(prefix + "/bin/plash", ["map", "box", "1"], environment: store.environment).status == 0)
        let lines = try bashCompletions(prefix, Self.completionLines, environment: store.environment)
        #expect(Array(lines.prefix(Self.expected.count)) == Self.expected, "\(lines)")
    }

    @Test func bashCompletesImagesOfAnOrdinaryUsersOwnStore() throws {
        let prefix = try install()
        let user = try userWithSubordinateIDs
        let data = makeDirectory("store", ownedBy: user) + "/plash"
        let env = ["PLASH_DATA": data, "PATH": prefix + "/bin:/usr/bin:/bin"]
        #expect(try user.run(prefix + "/bin/plash", ["import", "busybox"], environment: env, directory: user.home).status == 0)
        #expect(try user.run(prefix + "/bin/plash", ["map", "box", "1"], environment: env, directory: user.home).status == 0)
        let lines = try bashCompletions(prefix, Self.completionLines, user: user, environment: ["PLASH_DATA": data])
        #expect(Array(lines.prefix(Self.expected.count)) == Self.expected, "\(lines)")
        #expect(try user.run(prefix + "/bin/plash", ["purge", "--yes"], environment: env, directory: user.home).status == 0)
    }

    @Test(.skippedWhenMissing(missing([.fish])))
    func fishCompletesThroughTheInstalledFile() throws {
        let prefix = try install()
        let store = TestStore()
        #expect(try run(prefix + "/bin/plash", ["import", "busybox"], environment: store.environment).status == 0)
        let env = store.environment.merging(["PATH": prefix + "/bin:/usr/bin:/bin", "XDG_DATA_DIRS": prefix + "/share"]) { $1 }
        // Not --no-config: fish finds vendor_completions.d through XDG_DATA_DIRS in its own config.
        let result = try run("/usr/bin/fish", ["-c",
                                               "complete -C 'plash bu'; complete -C 'plash rm '; complete -C 'plash ps --'; complete -C 'plash-exec --net '"],
                             environment: env)
        #expect(result.status == 0, "\(result)")
        let words = result.stdout.split(separator: "\n").map { String($0.split(separator: "\t")[0]) }
        #expect(words == ["build", "1", "--help", "--json", "none"], "\(result)")
    }

    @Test(.skippedWhenMissing(missing([.zsh])))
    func zshCompletesThroughTheInstalledFunction() throws {
        let prefix = try install()
        let store = TestStore()
        #expect(try run(prefix + "/bin/plash", ["import", "busybox"], environment: store.environment).status == 0)
        #expect(try run(prefix + "/bin/plash", ["map", "box", "1"], environment: store.environment).status == 0)
        // _plash autoloaded from site-functions as compinit would; compadd and _files
        // print what they were given (the real ones need an interactive line editor).
        let script = """
            fpath=(\(prefix)/share/zsh/site-functions $fpath); autoload -Uz _plash
            compadd() { [[ $1 == -a ]] && print -r -- ${(P)2} }
            _files() { print -r -- _files }
            try() { words=("$@"); CURRENT=$#words; _plash }
            try plash ''; try plash run ''; try plash build --from ''; try plash run --ap; try plash import-tar ''
            """
        let env = store.environment.merging(["PATH": prefix + "/bin:/usr/bin:/bin"]) { $1 }
        let result = try run("/usr/bin/zsh", ["-f", "-c", script], environment: env)
        #expect(result.status == 0, "\(result)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 5, "\(result)")
        guard lines.count == 5 else { return }
        #expect(lines[0].hasPrefix("init build run ") && lines[0].hasSuffix(" --help --version"), "\(lines[0])")
        #expect(lines[1] == "1 box" && lines[2] == "1 box busybox", "\(lines)")
        #expect(lines[3].contains(" --memory ") && lines[3].contains(" --apt "), "\(lines[3])")
        #expect(lines[4] == "_files")
    }

    /// An option in a man page reads as it is typed: `--force`, never an en dash, which
    /// a copied command passes on as a different character.
    @Test func theManPagesShowOptionsWithTwoHyphens() throws {
        for (page, option) in [("plash.1", "rm [--force] IMAGE"), ("plash.1", "purge [--yes] [--force]"),
                               ("plash-exec.1", "--root DIR"), ("plash-macros.7", "--from-docker")] {
            let shown = try run("/usr/bin/man", ["-l", repositoryDirectory + "/man/" + page],
                                environment: ["MANPAGER": "cat", "MANWIDTH": "200", "PATH": "/usr/bin:/bin"])
            #expect(shown.status == 0, "\(page): \(shown)")
            // Justified lines stretch their spaces.
            let words = shown.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(words.contains(option), "\(page): \(option)")
            #expect(!shown.stdout.contains("\u{2013}"), "\(page) shows an en dash")
        }
    }

    /// A page as man shows it at 80 columns, and what troff warned of.
    func manPage(_ page: String) throws -> (text: String, warnings: String) {
        let shown = try run("/usr/bin/man", ["--warnings", "-l", repositoryDirectory + "/man/" + page],
                            environment: ["MANPAGER": "cat", "MANWIDTH": "80", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"])
        #expect(shown.status == 0, "\(page): \(shown)")
        return (shown.stdout, shown.stderr)
    }

    /// The lines of a section of a page as man shows it, words joined by one space.
    func section(_ name: String, of text: String) -> [String] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = lines.firstIndex(of: name) else { return [] }
        return lines[(start + 1)...].prefix { $0.isEmpty || $0.hasPrefix(" ") }
            .map { $0.split(separator: " ").joined(separator: " ") }.filter { !$0.isEmpty }
    }

    @Test func theManPagesHaveSynopsisEnvironmentAndSeeAlsoAndTroffWarnsOfNothingAt80Columns() throws {
        for page in ["plash.1", "plash-exec.1", "plash-macros.7"] {
            let (text, warnings) = try manPage(page)
            #expect(warnings.isEmpty, "\(page): \(warnings)")
            let headings = text.split(separator: "\n").filter { $0.first?.isUppercase == true && $0.uppercased() == $0 }.map(String.init)
            #expect(Array(headings.prefix(3)) == ["NAME", "SYNOPSIS", "DESCRIPTION"], "\(page): \(headings)")
            #expect(headings.suffix(2) == ["ENVIRONMENT", "SEE ALSO"], "\(page): \(headings)")
            // What it points to is installed: the other pages, and docs/ (scripts/install puts it in share/doc/plash).
            let seeAlso = section("SEE ALSO", of: text).joined(separator: " ")
            for other in ["plash(1)", "plash-exec(1)", "plash-macros(7)"] where other != page.replacingOccurrences(of: ".", with: "(") + ")" {
                #expect(seeAlso.contains(other), "\(page): SEE ALSO lacks \(other)")
            }
            #expect(seeAlso.contains("share/doc/plash/docs"), "\(page): \(seeAlso)")
            for document in text.matches(of: /docs\/([a-z-]+)\.md/).map({ String($0.output.1) }) {
                #expect(FileManager.default.fileExists(atPath: repositoryDirectory + "/docs/\(document).md"), "\(page) names docs/\(document).md")
                #expect(!["plash", "plash-exec", "macros"].contains(document), "\(page) names docs/\(document).md, a man page")
            }
        }
        // The synopses are the usage lines the programs print.
        let plashSynopsis = section("SYNOPSIS", of: try manPage("plash.1").text)
        for form in ["plash COMMAND [ARG...]", "./Plashfile [ARG...]"] { #expect(plashSynopsis.contains(form), "\(plashSynopsis)") }
        let execSynopsis = section("SYNOPSIS", of: try manPage("plash-exec.1").text).joined(separator: " ")
        let execHelp = try run(plashExec, ["--help"]).stdout.components(separatedBy: "\n\n")[0]
        for line in execHelp.split(separator: "\n") {
            let form = line.replacingOccurrences(of: "Usage: ", with: "").components(separatedBy: "   (")[0]
                .split(separator: " ").joined(separator: " ")
            #expect(execSynopsis.contains(form), "plash-exec(1) SYNOPSIS lacks \(form): \(execSynopsis)")
        }
    }

    /// Every PLASH_ variable the sources read is in plash(1)'s ENVIRONMENT, and the list
    /// names no variable that nothing reads.
    @Test func plashsEnvironmentListsEveryVariableTheSourcesRead() throws {
        var read = Set<String>()
        let sources = repositoryDirectory + "/Sources"
        for file in FileManager.default.enumerator(atPath: sources)!.compactMap({ $0 as? String }) where file.hasSuffix(".swift") {
            let text = try String(contentsOfFile: sources + "/" + file, encoding: .utf8)
            read.formUnion(text.matches(of: /PLASH_[A-Z_]+[A-Z]/).map { String($0.output) })
        }
        #expect(read.count > 10 && read.contains("PLASH_DATA"), "\(read)")
        let listed = Set(section("ENVIRONMENT", of: try manPage("plash.1").text).joined(separator: " ")
            .matches(of: /PLASH_[A-Z_]+[A-Z]/).map { String($0.output) })
        #expect(read.subtracting(listed).isEmpty, "plash(1) ENVIRONMENT lacks \(read.subtracting(listed).sorted())")
        #expect(listed.subtracting(read).isEmpty, "plash(1) ENVIRONMENT lists \(listed.subtracting(read).sorted()), read nowhere")
    }

    @Test(.skippedWhenMissing(missing([.pandoc])))
    func theCommittedManPagesMatchDocs() throws {
        let out = makeDirectory("man")
        let result = try run(repositoryDirectory + "/scripts/man", [out])
        #expect(result.status == 0, "\(result)")
        for page in ["plash.1", "plash-builder.1", "plash-exec.1", "plash-macros.7"] {
            let made = try String(contentsOfFile: out + "/" + page, encoding: .utf8)
            let committed = try String(contentsOfFile: repositoryDirectory + "/man/" + page, encoding: .utf8)
            #expect(Bool(made == committed), "man/\(page) is older than docs/: run scripts/man")
        }
    }
}
