import PlashExec
import PlashKit
import PlashSystem

/// An option of a plash command: its spellings, the placeholder of its value (nil: a
/// flag) and its line of help. `--help`, the argument check and the completions read it.
struct CommandOption: Sendable {
    let names: [String]
    let value: String?
    let help: String

    init(_ names: String..., value: String? = nil, help: String) {
        self.names = names
        self.value = value
        self.help = help
    }

    /// `-f, --force` or `--tag TAG`, as --help shows it.
    var synopsis: String { names.joined(separator: ", ") + (value.map { " " + $0 } ?? "") }
}

/// An operand of a plash command: what the argument check counts and what the
/// completions offer at its place.
struct Operand: Sendable {
    enum Kind: Sendable, Equatable {
        case image                 // an id or a name in the store
        case file, directory       // a host path
        case words([String])       // one of these words
        case text                  // anything (a reference, a URL, a name)
        case macros                // macros (plash help macros)
        case command               // a program and its arguments, taken as they are
        case topic                 // plash help's: macros or a command
    }
    enum Count: Sendable { case one, optional, many, rest }

    let kind: Kind
    let count: Count

    static let image = Operand(kind: .image, count: .one)
    static let images = Operand(kind: .image, count: .many)
    static let file = Operand(kind: .file, count: .one)
    static let directory = Operand(kind: .directory, count: .one)
    static let text = Operand(kind: .text, count: .one)
    static let command = Operand(kind: .command, count: .rest)
    static func optional(_ kind: Kind) -> Operand { Operand(kind: kind, count: .optional) }
    static func words(_ words: [String]) -> Operand { Operand(kind: .words(words), count: .one) }
}

/// A subcommand, declared as data as plash-exec's `execOptions` are: its name, usage,
/// one line of help, options and operands, and what it does. `plash help`, `plash
/// COMMAND --help`, the argument check (`expect`) and the shell completions (`plash
/// complete`) all read this table, so they cannot disagree.
struct Command: Sendable {
    let name: String
    /// What follows `plash NAME` in the usage line; several for several forms.
    let synopses: [String]
    let help: String
    let options: [CommandOption]
    let operands: [Operand]
    /// The first IMAGE may be macros that build it first, as in the original: `plash
    /// nodepath --from 1 --run 'touch /a'`.
    let buildsImageFromMacros: Bool
    /// The exit status of a failure: `plash run` ends as plash-exec, whose own
    /// failures are 125 so that a supervisor tells them from the program's status.
    let failureStatus: Int32
    let run: @Sendable ([String]) throws -> Int32

    init(_ name: String, _ synopses: String..., help: String, options: [CommandOption] = [], operands: [Operand] = [],
         buildsImageFromMacros: Bool = false, failureStatus: Int32 = 1, run: @escaping @Sendable ([String]) throws -> Int32) {
        self.init(name, synopses: synopses, help: help, options: options, operands: operands,
                  buildsImageFromMacros: buildsImageFromMacros, failureStatus: failureStatus, run: run)
    }

    init(_ name: String, synopses: [String], help: String, options: [CommandOption] = [], operands: [Operand] = [],
         buildsImageFromMacros: Bool = false, failureStatus: Int32 = 1, run: @escaping @Sendable ([String]) throws -> Int32) {
        self.name = name
        self.synopses = synopses
        self.help = help
        self.options = options
        self.operands = operands
        self.buildsImageFromMacros = buildsImageFromMacros
        self.failureStatus = failureStatus
        self.run = run
    }

    /// `Usage: plash NAME SYNOPSIS`, a line for each form.
    var usage: String {
        synopses.enumerated().map { ($0 == 0 ? "Usage: " : "       ") + "plash \(name) \($1)".trimmingSpaces }
            .joined(separator: "\n")
    }

    /// The option spelled `word`, if this command has one.
    func option(_ word: String) -> CommandOption? { options.first { $0.names.contains(word) } }
}

/// The commands of the image sources (ImageSource.swift), in their table's order.
let importCommands: [Command] = imageSources.flatMap { kind in
    kind.commands.map { command in
        Command(command.name, kind.synopsis(of: command), help: command.help,
                options: command.refresh == .optional ? [CommandOption("--refresh", help: command.refreshHelp)] : [],
                operands: kind.operands.map { operand in
                    let kind: Operand.Kind = switch operand.kind {
                    case .text: .text
                    case .file: .file
                    case .words(let words): .words(words)
                    }
                    return Operand(kind: kind, count: operand.optional ? .optional : .one)
                },
                run: { try importCommand(kind, command, $0) })
    }
}

// Its options are plash-exec's (runOptions); parseRun reads them from execOptions.
let runEntry = Command("run", synopses: runSynopses,
                       help: "Run CMD (default: the image's entrypoint and command, else root's shell) in an image, "
                           + "built first when given macros.",
                       operands: [.image, .command], failureStatus: 125, run: runCommand)

let commands: [Command] = [
    Command("init", "", help: "Create the store (commands that need it create it too).", run: initStore),
    Command("build", "MACRO...", help: "Build an image (cached) and print its id. The macros: plash help macros.",
            operands: [Operand(kind: .macros, count: .many)], run: build),
    runEntry,
    Command("rm", "[--force] IMAGE...",
            help: "Remove images and every image built on them (not while a container uses them, unless --force).",
            options: [CommandOption("-f", "--force", help: "remove them even while containers use them")],
            operands: [.images], buildsImageFromMacros: true, run: remove),
    Command("ls", "[--json]", help: "List images: id, parent, names, size, age, build script.",
            options: [CommandOption("--json", help: "one JSON array of objects: id, parent, names, size (bytes), age (seconds), script")],
            run: list),
    Command("du", "", help: "Show the disk space of each image, shared and its own, and what clean frees.",
            run: diskUsageCommand),
    Command("nodepath", "IMAGE [--allow-root-container]", help: "Print the image's node directory in the store.",
            options: [CommandOption("--allow-root-container", help: "IMAGE may be 0, the empty root: its node is printed")],
            operands: [.image], buildsImageFromMacros: true, run: nodepath),
    Command("parent", "IMAGE", help: "Print the id of the image below (0: none).",
            operands: [.image], buildsImageFromMacros: true, run: parent),
    Command("inspect", "IMAGE [--json]",
            help: "Show the image's config (Env, Entrypoint, Cmd, User, WorkingDir, ...) and history, as exports write them.",
            options: [CommandOption("--json", help: "podman image inspect's shape: an array of one object with Id, Created, Config, History, ...")],
            operands: [.image], run: inspect),
    Command("map", "NAME [IMAGE]", "-d NAME",
            help: "Name an image; with only NAME print its id; -d removes the name.",
            options: [CommandOption("-d", help: "remove the name NAME (not the image)")],
            operands: [.text, .optional(.image)], run: map),
    Command("mount", "IMAGE DIR", help: "Mount the image read-only at DIR.",
            operands: [.image, .directory], buildsImageFromMacros: true, run: mountCommand),
    Command("umount", "DIR", help: "Unmount what plash mount mounted at DIR.", operands: [.directory], run: umountCommand),
] + importCommands + [
    Command("export-tar", "IMAGE [FILE|-]", help: "Write the image's files as a tar (default: to stdout).",
            operands: [.image, .optional(.file)], buildsImageFromMacros: true, run: exportTarCommand),
    Command("export-oci", "IMAGE DIR|FILE.tar|- [--tag TAG]",
            help: "Write the image as an OCI image layout, one layer per plash layer (imported ones as they came, built ones gzip).",
            options: [CommandOption("--tag", value: "TAG", help: "the name of the image in the layout (default: latest)")],
            operands: [.image, .file], run: exportOCICommand),
    Command("export-docker-archive", "IMAGE FILE|- [--tag REF]",
            help: "Write the image as a docker archive, as docker save does, for docker load and podman load.",
            options: [CommandOption("--tag", value: "REF", help: "the name it loads as, NAME[:TAG] (default: none)")],
            operands: [.image, .file], run: exportDockerArchiveCommand),
    Command("push", "IMAGE REF",
            help: "Upload the image to a registry as REF ([HOST[:PORT]/]NAME[:TAG]): the layers it lacks, then the manifest, and print its digest.",
            operands: [.image, .text], run: pushCommand),
    Command("eval", "[MACRO...]", help: "Print the shell script the macros (none: read from stdin) expand to.",
            operands: [Operand(kind: .macros, count: .rest)], run: evalCommand),
    Command("create", "IMAGE [CMD [ARG...]]",
            help: "Run CMD (default /bin/sh) on the image as a build step, keep its writes as a new image, print its id.",
            operands: [.image, .command], buildsImageFromMacros: true, run: create),
    Command("add-layer", "PARENT DIR",
            help: "Move DIR into the store as a new image on PARENT (0: none) and print its id.",
            operands: [.image, .directory], buildsImageFromMacros: true, run: addLayerCommand),
    Command("copy", "IMAGE DIR", help: "Copy the image's files into DIR (new or empty).",
            operands: [.image, .directory], buildsImageFromMacros: true, run: copy),
    Command("with-mount", "IMAGE [CMD [ARG...]]",
            help: "Run a host command in the image's mounted files (path in $PLASH_MOUNT).",
            operands: [.image, .command], buildsImageFromMacros: true, run: withMount),
    Command("runb", "IMAGE CHANGESDIR [CMD [ARG...]]",
            help: "Run CMD in the image as a build step does, keeping its writes in CHANGESDIR.",
            operands: [.image, .directory, .command], failureStatus: 125, run: runb),
    Command("runopts", "-c IMAGE [-d CHANGESDIR] [-m PATH]... [--] [CMD [ARG...]]",
            help: "The original's run with its options: -d keeps the writes in CHANGESDIR, -m shares the host's PATH.",
            options: [CommandOption("-c", value: "IMAGE", help: "the image to run"),
                      CommandOption("-d", value: "CHANGESDIR", help: "keep the container's writes there (plash-exec --persist)"),
                      CommandOption("-m", value: "PATH", help: "share the host's PATH at the same place (--bind-try); nothing else is shared")],
            operands: [.command], failureStatus: 125, run: runopts),
    Command("seccomp", "PROFILE", "- [NAME]",
            help: "Compile a Docker/OCI seccomp profile for plash-exec --seccomp; print the BPF's path.",
            operands: [.file, .optional(.text)], run: seccomp),
    Command("ps", "[--json]", help: "List the processes running in plash containers, with their image.",
            options: [CommandOption("--json", help: "one JSON array of objects: pid, image, store, name, command")], run: ps),
    Command("kill", "CGROUP|PID|IMAGE [SIGNAL]",
            help: "Signal (default TERM) every process of a cgroup, of PID's container, or of an image. SIGNAL is a name or "
                + "number: TERM, SIGTERM, 15, -15.",
            operands: [.image, .optional(.text)], run: killCommand),
    Command("sudo", "[CMD [ARG...]]",
            help: "Run a host command (default: your shell) as root of your user namespace (to remove store files of subordinate ids).",
            operands: [.command], run: sudo),
    Command("clean", "[--clean-tmp] [--clean-cache-keys] [--clean-index]",
            help: "Remove build leftovers, names of removed images and empty plash cgroups; with options, only those parts.",
            options: [CommandOption("--clean-tmp", help: "only what killed builds left in tmp/, and empty plash cgroups"),
                      CommandOption("--clean-cache-keys", help: "only names and cache keys of removed images"),
                      CommandOption("--clean-index", help: "only index links and nodes of removed images")],
            run: clean),
    Command("purge", "[--yes] [--force]",
            help: "Remove every image (asks first unless --yes; not while containers run, unless --force).",
            options: [CommandOption("-y", "--yes", help: "do not ask"),
                      CommandOption("-f", "--force", help: "remove them even while containers use them")], run: purge),
    Command("shrink", "", help: "Remove the older half of the images, but named and running ones.", run: shrink),
    Command("data", "[CMD [ARG...]]", help: "Print the store's directory, or run CMD in it.", operands: [.command], run: data),
    Command("doctor", "", help: "Check what plash needs on this machine, for this user, and name each fix.", run: doctor),
    Command("complete", "commands|macros|images", "options COMMAND", "line WORD...", "script bash|zsh|fish",
            help: "Print words for shell completion, one a line; line: the candidates for a command line's last word; "
                + "script: the completion of a shell, as installed.",
            operands: [.words(completeTopics), .optional(.text)], run: complete),
    Command("version", "", help: "Print plash's version.", run: version),
    Command("help", "[macros|COMMAND]", help: "List the commands, or the macros, or a command's options.",
            operands: [.optional(.topic)], run: help),
]

/// The command named `name`. `run` is found without the table: plash run's start is a
/// container's, and building the whole table (its arrays, the image sources' commands)
/// cost a twentieth of it (docs/performance.md).
func lookupCommand(_ name: String) -> Command? { name == "run" ? runEntry : commands.first { $0.name == name } }

/// Checks a command's arguments against its table entry: options it knows, as many
/// operands as it takes. Returns the operands, the arguments without the options. As
/// getopt's, `--` ends the options, and so does the start of a command's CMD: what
/// follows is an operand even when it starts with '-'.
@discardableResult
func expect(_ arguments: [String], _ name: String) throws -> [String] {
    let entry = lookupCommand(name)!
    let fixed = entry.operands.prefix { $0.count != .rest }.count
    var operands: [String] = []
    var rest = arguments[...]
    while let word = rest.popFirst() {
        if word == "--" { operands += rest; break }
        if word.hasPrefix("-") && word != "-" {
            guard let option = entry.option(word) else { throw PlashError.usage("\(name): unknown option \(word)", usage: entry.usage) }
            if let value = option.value, rest.popFirst() == nil {
                throw PlashError.usage("\(name): \(word) needs \(value)", usage: entry.usage)
            }
            continue
        }
        operands.append(word)
        // From here on the words are CMD's.
        if operands.count == fixed && fixed < entry.operands.count { operands += rest; break }
    }
    let least = entry.operands.filter { $0.count == .one || $0.count == .many }.count
    let most = entry.operands.contains { $0.count == .many || $0.count == .rest } ? Int.max : entry.operands.count
    if operands.count < least { throw PlashError.usage("\(name): missing arguments", usage: entry.usage) }
    if operands.count > most { throw PlashError.usage("\(name): too many arguments", usage: entry.usage) }
    // An empty FILE or DIR ("$UNSET") names no path: said here, not as an open of "" later.
    for (operand, word) in zip(entry.operands, operands) where word.isEmpty {
        if operand.kind == .file || operand.kind == .directory {
            throw PlashError.usage("\(name): an empty \(operand.kind == .file ? "FILE" : "DIR") names no path", usage: entry.usage)
        }
    }
    return operands
}

/// The value of the option `name` among the arguments, if given.
func optionValue(_ arguments: [String], _ name: String) -> String? {
    guard let at = arguments.firstIndex(of: name), at + 1 < arguments.count,
          arguments[..<at].firstIndex(of: "--") == nil else { return nil }
    return arguments[at + 1]
}

/// Whether the flag `names` (any spelling) is among the options, before `--`.
func hasFlag(_ arguments: [String], _ names: String...) -> Bool {
    arguments.prefix { $0 != "--" }.contains { names.contains($0) }
}
/// The store, created if it does not exist yet.
func openStore() throws -> Store {
    let store = Store()
    if try !store.isReadable() { try store.create() }
    return store
}

func printID(_ image: Store.Image) { print(image.id) }

/// rm, shrink and purge say on stderr which images went (stdout stays for ids).
func reportRemoved(_ ids: [Int]) {
    printLine(toStandardError: ids.isEmpty ? "plash: removed no images"
              : "plash: removed images " + ids.map(String.init).joined(separator: " "))
}
