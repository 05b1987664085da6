#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PlashSystem

/// The macro language: every macro in one table (names, arguments, one line of help,
/// expansion), so the parser and `plash help macros` read the same data.
public struct Macro: Sendable {
    public enum Arguments: Sendable {
        case none
        case one(String)           // exactly one word, taken even if it starts with '-'
        case some(String)          // zero or more words, up to the next word starting with '-'
        case oneOrMore(String)
    }

    public let names: [String]
    public let arguments: Arguments
    public let help: String
    /// A Plashfile line `--apk a b` gives the words a and b, as in the original; a line
    /// `--run touch /file` one argument, the command.
    let splitsLine: Bool
    let expand: @Sendable (inout MacroParser, [String]) throws -> Void

    init(names: [String], arguments: Arguments, help: String, splitsLine: Bool = false,
         expand: @escaping @Sendable (inout MacroParser, [String]) throws -> Void) {
        self.names = names
        self.arguments = arguments
        self.help = help
        self.splitsLine = splitsLine
        self.expand = expand
    }

    public var name: String { names[0] }

    /// `--run, -x CMD...`, as `plash help macros` and docs/macros.md show it: a single
    /// word repeats (`PKG...`), several are written out (`CMD [ARG...]`, `SUITE [MIRROR]`).
    public var synopsis: String {
        let flags = names.joined(separator: ", ")
        switch arguments {
        case .none: return flags
        case .one(let what): return "\(flags) \(what)"
        case .some(let what), .oneOrMore(let what): return "\(flags) \(what)" + (what.contains(" ") ? "" : "...")
        }
    }
}

/// Package managers: the commands that refresh the package lists, install, and then
/// drop the lists and downloads again, as the distributions' own container images keep
/// none (Debian's and Ubuntu's an empty /var/lib/apt/lists, Alpine's an empty
/// /var/cache/apk): a layer holds what was installed. apt-get gets
/// DEBIAN_FRONTEND=noninteractive from the build's environment (Builder.run), so the
/// script reads as the original's did.
let packageManagers: [(name: String, help: String, commands: @Sendable (String) -> [String])] = [
    ("apt", "install Debian/Ubuntu packages with apt-get",
     { ["apt-get update", "apt-get install -y \($0)", aptCleanup] }),
    ("apk", "install Alpine packages", { ["apk add --no-cache \($0)"] }),
    ("yum", "install packages with yum", { ["yum install -y \($0)", "yum clean all"] }),
    ("dnf", "install Fedora packages with dnf", { ["dnf install -y \($0)", "dnf clean all"] }),
    ("pacman", "install Arch Linux packages", { ["pacman -Sy --noconfirm \($0)", "rm -rf /var/cache/pacman/pkg/*"] }),
    ("emerge", "install Gentoo packages", { ["emerge-webrsync", "emerge \($0)"] }),
    ("zypper", "install openSUSE packages", { ["zypper --non-interactive install \($0)", "zypper clean --all"] }),
    ("pip", "install Python packages with pip", { ["pip install --no-cache-dir \($0)"] }),
    ("pip3", "install Python packages with pip3", { ["pip3 install --no-cache-dir \($0)"] }),
    ("npm", "install npm packages globally", { ["npm install -g \($0)", "npm cache clean --force"] }),
    ("gem", "install Ruby gems", { ["gem install \($0)"] }),
    ("add-apt-repository", "add Ubuntu PPAs (installs software-properties-common first)",
     { ["apt-get update", "apt-get install -y software-properties-common", "add-apt-repository -y \($0)", aptCleanup] }),
]

/// What Debian's own images do after apt-get (their /etc/apt/apt.conf.d/docker-clean).
let aptCleanup = "apt-get clean && rm -rf /var/lib/apt/lists/*"

/// A regular file at `path` (relative: in the working directory): a word the user
/// meant as a file, where plash takes a macro or an image.
func isFile(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
}

/// A shell comment line that says what a generated step does: `plash ls` shows a
/// layer's first line, and `# apt cowsay` says more than `apt-get update`. A newline in
/// a word would end the comment and make the rest of it a command.
func describing(_ words: [String]) -> String {
    "# " + words.joined(separator: " ").map { $0.isNewline ? " " : String($0) }.joined()
}

/// Distribution shorthands: `-A PKG...` is `--from alpine --apk PKG...`.
let distributions: [(flag: String, image: String, manager: String)] = [
    ("-A", "alpine", "apk"), ("-D", "debian", "apt"), ("-U", "ubuntu", "apt"),
    ("-F", "fedora", "dnf"), ("-R", "archlinux", "pacman"), ("-G", "gentoo", "emerge"), ("-C", "centos", "yum"),
]

func install(_ manager: String, _ packages: [String], into parser: inout MacroParser) {
    let names = packages.map(shellQuote)
    guard !names.isEmpty, let entry = packageManagers.first(where: { $0.name == manager }) else { return }
    // One step, so the cleanup runs in the shell that installed (sh -e stops it at a failure).
    let commands = entry.commands(names.joined(separator: " "))
    parser.plan.current.steps.append(([describing([manager] + names)] + commands).joined(separator: "\n"))
}

/// The `--from-*` macro of each image source that has one (ImageSource.swift): its
/// arguments are checked by the source's parser as the macro is read.
let sourceMacros: [Macro] = imageSources.compactMap { kind in
    kind.macro.map { name in
        Macro(names: [name], arguments: kind.arguments.upperBound > 1 ? .oneOrMore(kind.synopsis) : .one(kind.synopsis),
              help: kind.macroHelp) { parser, args in
            _ = try kind.parse(args, SourceCaller(name: name, usage: buildUsage))
            try setSource(.imported(source: kind.name, arguments: args), &parser)
        }
    }
}

func setSource(_ source: BuildPlan.Source, _ parser: inout MacroParser) throws {
    if parser.plan.source != nil { throw PlashError.usage("give only one image to start from (--from)", usage: buildUsage) }
    parser.plan.source = source
}

/// printf is a builtin of every /bin/sh, so LINEs of any length reach no execve limit.
/// `described` is the step's first line, a comment (`# write-file /etc/x`).
func writeFileStep(_ path: String, _ lines: [String], executable: Bool, described: [String]) -> String {
    let quoted = shellQuote(path)
    var step = "printf '%s\\n' \(lines.map(shellQuote).joined(separator: " ")) > \(quoted)"
    if lines.isEmpty { step = ": > \(quoted)" }
    // The file's missing parent directories are made first, as `mkdir -p` would.
    let parent = splitLast(path).0
    if parent != "/" && parent != "." { step = "mkdir -p -- \(shellQuote(parent)) && " + step }
    if executable { step += " && chmod 755 \(quoted)" }
    return describing(described) + "\n" + step
}

/// The PATH of --write-file and --write-script, which must be absolute: a relative one
/// would name a file in the directory the step starts in, the caller's working
/// directory, which a build step sees read-only (or the image's own, by chance).
func imagePath(_ macro: String, _ path: String) throws -> String {
    guard path.hasPrefix("/") else { throw PlashError.usage("\(macro) \(path): must be an absolute path", usage: buildUsage) }
    return path
}

public let entrypointPath = "/.plash-entrypoint"

public let macros: [Macro] = {
    var table: [Macro] = [
        Macro(names: ["--from", "-f", "--image"], arguments: .one("IMAGE"),
              help: "start from IMAGE: an id, a name, busybox (built from the host's busybox), else NAME[:RELEASE] of the image server") { parser, args in
            try setSource(.any(args[0]), &parser)
        },
        Macro(names: ["--from-id"], arguments: .one("ID"), help: "start from the image with this id") { parser, args in
            try setSource(.id(args[0]), &parser)
        },
        Macro(names: ["--from-map"], arguments: .one("NAME"), help: "start from the image with this name") { parser, args in
            try setSource(.name(args[0]), &parser)
        },
    ]
    table += sourceMacros
    table += [
        Macro(names: ["--run", "-x"], arguments: .oneOrMore("CMD"),
              help: "run each CMD with /bin/sh -ec; the build fails at the first failing one") { parser, args in
            parser.plan.current.steps += args
        },
        Macro(names: ["--run-stdin"], arguments: .none, help: "run the script read from stdin") { parser, _ in
            parser.plan.current.steps.append(try parser.readStandardInput())
        },
        Macro(names: ["--layer", "-l"], arguments: .some("[MACRO ARG...]"),
              help: "end the current layer; --layer MACRO A B: MACRO A and MACRO B, each in a layer of its own") { parser, args in
            endLayer(&parser)
            // As the original: `--layer run A B` is --layer --run A --layer --run B --layer.
            if let name = args.first {
                let flag = name.hasPrefix("-") ? name : "--" + name
                parser.insert(args.dropFirst().flatMap { [flag, escaped($0), "--layer"] })
            }
        },
        Macro(names: ["--invalidate-layer"], arguments: .none,
              help: "rebuild the current layer every time (its cache key gets a random part)") { parser, _ in
            parser.plan.current.invalidate = true
        },
        Macro(names: ["--hash-path"], arguments: .oneOrMore("PATH"),
              help: "rebuild the current layer when these files or directories change") { parser, args in
            parser.plan.current.hashPaths += args
        },
        Macro(names: ["--env"], arguments: .oneOrMore("NAME"),
              help: "pass these variables of the caller into the build (their values are not cached)") { parser, args in
            parser.plan.current.environment += args.filter { !parser.plan.current.environment.contains($0) }
        },
        Macro(names: ["--write-file"], arguments: .oneOrMore("PATH LINE..."),
              help: "write the LINEs to the file PATH, making its missing parent directories") { parser, args in
            parser.plan.current.steps.append(writeFileStep(try imagePath("--write-file", args[0]), Array(args.dropFirst()), executable: false,
                                                           described: ["write-file", shellQuote(args[0])]))
        },
        Macro(names: ["--write-script"], arguments: .oneOrMore("PATH LINE..."),
              help: "write the LINEs to PATH and make it executable") { parser, args in
            parser.plan.current.steps.append(writeFileStep(try imagePath("--write-script", args[0]), Array(args.dropFirst()), executable: true,
                                                           described: ["write-script", shellQuote(args[0])]))
        },
        Macro(names: ["--entrypoint"], arguments: .oneOrMore("CMD [ARG...]"),
              help: "the program a Plashfile runs: CMD ARG... then the Plashfile's arguments", splitsLine: true) { parser, args in
            setEntrypoint(args, &parser)
        },
        Macro(names: ["--entrypoint-script"], arguments: .oneOrMore("LINE"),
              help: "the shell script a Plashfile runs, with its arguments") { parser, args in
            // As the original: a script with its own `#!` line keeps it.
            let script = args[0].hasPrefix("#!") ? args : ["#!/bin/sh"] + args
            parser.plan.current.steps.append(writeFileStep(entrypointPath, script, executable: true,
                                                           described: ["entrypoint-script"]))
            setEntrypointScript(&parser)
        },
        Macro(names: ["--eval-file"], arguments: .one("FILE"),
              help: "read more macros from FILE, one per line, as in a Plashfile") { parser, args in
            try parser.evaluateFile(args[0])
        },
        Macro(names: ["--eval-string"], arguments: .one("STR"),
              help: "read more macros from STR, one per line, as in a Plashfile") { parser, args in
            parser.insert(plashfileWords(args[0]))
        },
        Macro(names: ["--eval-stdin"], arguments: .none,
              help: "read more macros from stdin, one per line, as in a Plashfile") { parser, _ in
            parser.insert(plashfileWords(try parser.readStandardInput()))
        },
    ]
    table += configMacros
    table += compatibilityMacros
    for manager in packageManagers {
        table.append(Macro(names: ["--" + manager.name], arguments: .some(manager.name == "add-apt-repository" ? "PPA" : "PKG"), help: manager.help, splitsLine: true) { parser, args in
            install(manager.name, args, into: &parser)
        })
    }
    for distribution in distributions {
        table.append(Macro(names: [distribution.flag], arguments: .some("PKG"),
                           help: "--from \(distribution.image) --\(distribution.manager) PKG...", splitsLine: true) { parser, args in
            try setSource(.any(distribution.image), &parser)
            install(distribution.manager, args, into: &parser)
        })
    }
    return table
}()

func macro(named name: String) -> Macro? {
    macros.first { $0.names.contains(name) }
}

/// Words -> BuildPlan. A word starting with '-' names a macro; its arguments are the
/// words up to the next one starting with '-' (or exactly one word, for macros that
/// take one).
public struct MacroParser {
    public var plan = BuildPlan()
    /// Macros that --defpm defined; they win over the table's, as in the original.
    var defined: [Macro] = []
    var words: ArraySlice<String>
    let readStdin: () throws -> String
    var stdinUsed = false
    /// How many words were left when the macro being expanded was taken.
    var macroStart = 0
    /// The files (--eval-file) and URLs (--eval-url, --eval-github) being read, outermost
    /// first, each with what it is (a file's device and inode, a URL's text). Their words
    /// lie in front of the `rest` words that followed them, so one is still being read
    /// while more than `rest` words are left: words are only taken from and inserted at
    /// the front.
    var evaluating: [(name: String, identity: String, rest: Int)] = []
    static let maximumEvalDepth = 32
    /// Files and URLs read in all: nesting bounds the depth, this the breadth (a file
    /// that names two others, each naming two, ... 32 deep).
    var evaluated = 0
    static let maximumEvaluations = 1000

    public init(_ words: [String], readStdin: @escaping () throws -> String = readAllStandardInput) {
        self.words = words[...]
        self.readStdin = readStdin
    }

    mutating func insert(_ more: [String]) {
        words.insert(contentsOf: more, at: words.startIndex)
    }

    /// --eval-file: the file's macros go in front of the words left.
    mutating func evaluateFile(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else { throw PlashError.system("--eval-file", path) }
        try enter("--eval-file", path, identity: "file \(info.st_dev) \(info.st_ino)")
        // A FIFO (`--eval-file <(...)`) is read as it comes, never waited on without a writer.
        let text = String(decoding: try readFile(path, what: "--eval-file", limit: macroTextLimit), as: UTF8.self)
        insert(plashfileWords(text))
    }

    /// --eval-url, --eval-github: the macros at `url` go in front of the words left.
    mutating func evaluateURL(_ url: String, macro: String, fetch: () throws -> String) throws {
        try enter(macro, url, identity: "url " + url)
        insert(plashfileWords(try fetch()))
    }

    /// Checks that the file or URL `name` may be read next: one already being read
    /// (itself, or through others) would be read forever, and nesting and the count of
    /// all read are bounded: refused with one line.
    mutating func enter(_ macro: String, _ name: String, identity: String) throws {
        evaluating.removeAll { $0.rest >= macroStart }
        if let first = evaluating.firstIndex(where: { $0.identity == identity }) {
            let cycle = (evaluating[first...].map(\.name) + [name]).joined(separator: " -> ")
            throw PlashError.usage("\(macro) \(name): it includes itself (\(cycle))")
        }
        guard evaluating.count < MacroParser.maximumEvalDepth else {
            throw PlashError.usage("\(macro) \(name): files nested more than \(MacroParser.maximumEvalDepth) deep")
        }
        guard evaluated < MacroParser.maximumEvaluations else {
            throw PlashError.usage("\(macro) \(name): more than \(MacroParser.maximumEvaluations) files read in all")
        }
        evaluated += 1
        evaluating.append((name, identity, words.count))
    }

    mutating func readStandardInput() throws -> String {
        if stdinUsed { throw PlashError.usage("stdin can be read only once (--run-stdin, --eval-stdin)") }
        stdinUsed = true
        return try readStdin()
    }

    public mutating func parse() throws -> BuildPlan {
        while true {
            macroStart = words.count
            guard let word = words.popFirst() else { break }
            guard let macro = defined.last(where: { $0.names.contains(word) }) ?? macro(named: word) else {
                if let replaced = replacedMacros.first(where: { $0.name == word }) {
                    throw PlashError.usage(replaced.hint, usage: buildUsage)
                }
                if word.hasPrefix("-") {
                    throw PlashError.usage("unknown macro \(word) (see plash help macros)", usage: buildUsage)
                }
                if isFile(word) {
                    // `plash build ./Plashfile`, as `docker build` takes its file.
                    throw PlashError.usage("\(word): expected a macro; to build a Plashfile: plash build --eval-file \(shellQuote(word))",
                                           usage: buildUsage)
                }
                throw PlashError.usage("\(word): expected a macro (see plash help macros)", usage: buildUsage)
            }
            var args: [String] = []
            switch macro.arguments {
            case .none: break
            case .one(let what):
                guard let next = words.popFirst() else {
                    throw PlashError.usage("\(word): needs \(what)", usage: buildUsage)
                }
                args = [escapedArgument(next) ?? next]
            case .some, .oneOrMore:
                while let next = words.first, !(next.hasPrefix("-") && next.count > 1) || escapedArgument(next) != nil {
                    args.append(escapedArgument(next) ?? next)
                    words.removeFirst()
                }
            }
            if case .oneOrMore(let what) = macro.arguments, args.isEmpty {
                throw PlashError.usage("\(word): needs \(what)", usage: buildUsage)
            }
            try macro.expand(&self, args)
        }
        return plan
    }
}

public func parseMacros(_ words: [String], readStdin: @escaping () throws -> String = readAllStandardInput) throws -> BuildPlan {
    var parser = MacroParser(words, readStdin: readStdin)
    return try parser.parse()
}

/// The most a Plashfile, a file of macros or a script on stdin may hold: scripts of
/// megabytes are fine, /dev/zero or /dev/urandom fail instead of filling the memory.
public let macroTextLimit = 64 << 20

public func readAllStandardInput() throws -> String {
    String(decoding: try readAll(0, path: "stdin", what: "read", limit: macroTextLimit), as: UTF8.self)
}

/// A Plashfile's words: one per line; blank lines and lines starting with '#' or '--#'
/// (the shebang too) are skipped; `--\ TEXT` is the argument TEXT, `--\` an empty one.
/// A macro may share its line with one argument: `--run touch /file` is the macro
/// --run and the argument `touch /file`; with a list of names, `--apk a b`, the names.
/// Lines may end in CRLF (a file saved on Windows): to Swift "\r\n" is one Character,
/// not a "\n", so it is a line end of its own.
///
/// The lines of a file or a script (`scriptMacros`) are kept as written, as the
/// original kept them: indented, and a line starting with '#' is a line too (a config
/// file's comment, a script's `#!`). The lines of one --run are one script, as the
/// original ran a layer: `cd`, variables, `if`...`fi` and here-documents span lines.
public func plashfileWords(_ text: String) -> [String] {
    var words: [String] = []
    var current = ""            // the macro that the lines are arguments of
    var script: [String] = []   // the lines of the current --run
    func endScript() {
        if !script.isEmpty { words.append(argumentWord(script.joined(separator: "\n"))) }
        script = []
    }
    for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
        let line = trimmed(rawLine)
        if line.isEmpty || line.hasPrefix("--#") { continue }
        // An indented line of a script is the script's (`  -y foo` after a `\`).
        let indented = rawLine.first == " " || rawLine.first == "\t"
        if line.hasPrefix("-"), escapedArgument(line) == nil, !(indented && scriptMacros.contains(current)) {
            endScript()
            let blank = line.firstIndex(where: { $0 == " " || $0 == "\t" })
            let name = blank.map { String(line[..<$0]) } ?? line
            words.append(name)
            current = name
            guard let blank else { continue }
            // Macros --defpm defines are not in the table yet: they install packages.
            if macro(named: name)?.splitsLine ?? true {
                words += blankSeparated(String(line[blank...])).map(escaped)
            } else if runMacros.contains(name) {
                script.append(trimmed(line[blank...]))
            } else {
                words.append(trimmed(line[blank...]))
            }
        } else if scriptMacros.contains(current) {
            let kept = escapedArgument(line) ?? String(rawLine.prefix { $0 != "\r" }).trailingBlanksRemoved
            if runMacros.contains(current) { script.append(kept) } else { words.append(argumentWord(kept)) }
        } else if !line.hasPrefix("#") {
            words.append(line)
        }
    }
    endScript()
    return words
}

let runMacros: Set = ["--run", "-x"]
let scriptMacros: Set = runMacros.union(["--write-file", "--write-script", "--entrypoint-script"])

/// TEXT as a word that the parser takes as an argument, whatever it starts with.
func argumentWord(_ text: String) -> String {
    text.isEmpty ? "--\\" : text.hasPrefix("-") ? escaped(text) : text
}

extension String {
    var trailingBlanksRemoved: String {
        String(self[..<(lastIndex(where: { $0 != " " && $0 != "\t" }).map { index(after: $0) } ?? startIndex)])
    }
}

public let buildUsage = "Usage: plash build MACRO... (see plash help macros)"

/// The text without blanks (spaces, tabs, carriage returns) at either end.
func trimmed<Text: StringProtocol>(_ text: Text) -> String {
    let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
    guard let first = text.firstIndex(where: { !blank($0) }), let last = text.lastIndex(where: { !blank($0) }) else {
        return ""
    }
    return String(text[first...last])
}
