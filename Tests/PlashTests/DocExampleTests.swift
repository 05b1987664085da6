import Foundation
import PlashTestSupport
import Testing

/// Every shell session shown in README.md, docs/ (and so the man pages made from it),
/// runit/ and supervisord/ is run as written, in a fresh store and directory: a block
/// whose lines start with `$ ` is a session, each `$ ` line (with its `\` continuations)
/// one command, and the lines after it, when there are any, its exact output. A
/// Plashfile shown (a block starting `#!/usr/bin/env plash`) is saved as ./Plashfile
/// for the file's next session. A command that cannot run here (it needs Docker Hub, or
/// installs onto this machine) says so where readers see it, with `[not run by tests:
/// WHY]` in its comment; `notRun` counts those, so a new one is a decision in review.
@Suite struct DocExampleTests {
    static let notRun = 6

    @Test(arguments: sessions)
    func theSessionRunsAsWritten(_ session: Session) throws {
        let store = TestStore()
        let directory = makeDirectory("example")
        if let plashfile = session.plashfile {
            try writeExecutable(directory + "/Plashfile", plashfile)
        }
        let environment = store.environment.merging([
            "PATH": productsDirectory.path + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ]) { $1 }
        for command in session.commands where command.notRunBecause == nil {
            let (result, ended) = try runWithDeadline("/bin/bash", ["-c", "cd '\(directory)' || exit 99\n" + command.text],
                                                      environment: environment, seconds: 60)
            #expect(ended, "\(session): `\(command.text)` did not end within 60 s")
            #expect(result.status == 0, "\(session): `\(command.text)`: \(result)")
            if !command.output.isEmpty {
                #expect(result.stdout == command.output.map { $0 + "\n" }.joined(),
                        "\(session): `\(command.text)` printed \(result.stdout.debugDescription), the docs show \(command.output)")
            }
        }
    }

    @Test func theExamplesNotRunAreCountedAndEachSaysWhy() throws {
        let skipped = sessions.flatMap { session in session.commands.compactMap { $0.notRunBecause } }
        #expect(skipped.count == Self.notRun, "\(skipped)")
        #expect(skipped.allSatisfy { $0.count > 3 }, "\(skipped)")
    }

    /// runit/ and supervisord/ default to /srv/www and /var/lib/sort-demo, which a fresh
    /// Debian lacks: their READMEs' steps make each default directory and input file
    /// before the services start (RunitTests and SupervisordTests run the services).
    @Test(arguments: ["runit/README.md", "supervisord/README.md"])
    func theServiceStepsCreateWhatTheDefaultsNeed(_ readme: String) throws {
        let text = try String(contentsOfFile: repositoryDirectory + "/" + readme, encoding: .utf8)
        let steps = text.components(separatedBy: "\n").filter { $0.hasPrefix("    mkdir -p ") }
        func read(_ file: String) throws -> String {
            try String(contentsOfFile: repositoryDirectory + "/runit/" + file, encoding: .utf8).trimmingCharacters(in: .newlines)
        }
        let root = try read("httpd-demo/env/HTTPD_ROOT"), input = try read("sort-demo/env/SORT_INPUT")
        let conf = try String(contentsOfFile: repositoryDirectory + "/supervisord/httpd-demo.conf", encoding: .utf8)
            + String(contentsOfFile: repositoryDirectory + "/supervisord/sort-demo.conf", encoding: .utf8)
        #expect(conf.contains("${HTTPD_ROOT:-\(root)}") && conf.contains("${SORT_INPUT:-\(input)}"))
        let directory = (input as NSString).deletingLastPathComponent
        #expect(steps.contains { $0.hasPrefix("    mkdir -p \(root) && echo ") && $0.contains("> \(root)/index.html") }, "\(steps)")
        #expect(steps.contains { $0.hasPrefix("    mkdir -p \(directory) && seq ") && $0.contains("> \(input) ") }, "\(steps)")
    }

    /// s6/ and systemd/ serve /srv/www too (s6's env/HTTPD_ROOT, the unit's
    /// Environment=): their READMEs make it, with an index.html, before httpd starts
    /// (S6Tests and SystemdTests run the services).
    @Test(arguments: zip(["s6/README.md", "systemd/README.md"], ["s6/httpd-demo/env/HTTPD_ROOT", "systemd/httpd-demo.service"]))
    func theServiceStepsMakeTheDirectoryHttpdServes(_ readme: String, _ defaults: String) throws {
        let text = try String(contentsOfFile: repositoryDirectory + "/" + readme, encoding: .utf8)
        let setting = try String(contentsOfFile: repositoryDirectory + "/" + defaults, encoding: .utf8)
        let words = setting.components(separatedBy: .whitespacesAndNewlines).filter { !$0.isEmpty }
        let root = words.first { $0.hasPrefix("HTTPD_ROOT=") }.map { String($0.dropFirst("HTTPD_ROOT=".count)) } ?? words[0]
        #expect(root.hasPrefix("/"), "\(defaults): \(words)")
        let steps = text.components(separatedBy: "\n").filter { $0.hasPrefix("    ") }
        let make = steps.firstIndex { $0.hasPrefix("    mkdir -p \(root) && echo ") && $0.contains("> \(root)/index.html") }
        let start = steps.firstIndex { $0.hasPrefix("    cp ") }
        #expect(make != nil && start != nil && make! < start!, "\(readme): \(steps)")
    }

    @Test func theDocumentsHoldSessionsToRun() throws {
        // A parser that found nothing would pass every session it found.
        #expect(Set(sessions.map(\.file)).isSuperset(of: ["README.md", "docs/plash.md", "docs/supervisors.md"]))
        #expect(sessions.contains { $0.plashfile != nil })
    }
}

struct Command: Sendable {
    var text: String
    var output: [String] = []
    var notRunBecause: String?
}

struct Session: Sendable, CustomTestStringConvertible, CustomStringConvertible {
    var file: String
    var line: Int
    var commands: [Command]
    var plashfile: String?
    var description: String { "\(file):\(line)" }
    var testDescription: String { description }
}

let documents: [String] = {
    let docs = (try? FileManager.default.contentsOfDirectory(atPath: repositoryDirectory + "/docs")) ?? []
    return ["README.md", "runit/README.md", "supervisord/README.md"]
        + docs.filter { $0.hasSuffix(".md") }.sorted().map { "docs/" + $0 }
}()

let sessions: [Session] = documents.flatMap { file in
    let text = (try? String(contentsOfFile: repositoryDirectory + "/" + file, encoding: .utf8)) ?? ""
    return parseSessions(file: file, text: text)
}

/// The code blocks of a Markdown text (fenced, or indented by four spaces after a blank
/// line), each with the line it starts on; then the sessions among them.
func parseSessions(file: String, text: String) -> [Session] {
    let lines = text.components(separatedBy: "\n")
    var blocks: [(line: Int, lines: [String])] = []
    var index = 0
    while index < lines.count {
        let line = lines[index]
        if line.hasPrefix("```") {
            let start = index + 1
            var body: [String] = []
            index += 1
            while index < lines.count && !lines[index].hasPrefix("```") { body.append(lines[index]); index += 1 }
            blocks.append((start, body))
        } else if line.hasPrefix("    ") && (index == 0 || lines[index - 1].isEmpty) {
            let start = index + 1
            var body: [String] = []
            while index < lines.count && (lines[index].hasPrefix("    ") || lines[index].isEmpty) {
                body.append(String(lines[index].dropFirst(4)))
                index += 1
            }
            while body.last?.isEmpty == true { body.removeLast() }
            blocks.append((start, body))
            continue
        }
        index += 1
    }
    var found: [Session] = []
    var plashfile: String?
    for block in blocks {
        if block.lines.first == "#!/usr/bin/env plash" {
            plashfile = block.lines.joined(separator: "\n") + "\n"
            continue
        }
        guard block.lines.first?.hasPrefix("$ ") == true else { continue }
        var commands: [Command] = []
        var continuing = false
        for line in block.lines {
            if line.hasPrefix("$ ") || continuing {
                let text = continuing ? line : String(line.dropFirst(2))
                if continuing { commands[commands.count - 1].text += "\n" + text } else { commands.append(Command(text: text)) }
                continuing = text.hasSuffix("\\")
            } else {
                commands[commands.count - 1].output.append(line)
            }
        }
        for index in commands.indices {
            if let marker = commands[index].text.range(of: "[not run by tests: ") {
                let reason = commands[index].text[marker.upperBound...]
                commands[index].notRunBecause = String(reason.prefix { $0 != "]" })
            }
        }
        found.append(Session(file: file, line: block.line, commands: commands, plashfile: plashfile))
        plashfile = nil
    }
    return found
}
