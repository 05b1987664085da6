import PlashExec
import PlashKit
import PlashSystem

/// A subcommand: its name, arguments and one line of help, and what it does. `plash
/// help` lists this table.
struct Command: Sendable {
    let name: String
    let synopsis: String
    let help: String
    let run: @Sendable ([String]) throws -> Int32
    /// The options `plash NAME --help` lists, one per line, after the help line; made
    /// only when asked for, not at every start (`plash run`'s come from plash-exec's table).
    private let makeOptions: @Sendable () -> String
    var options: String { makeOptions() }
    /// The exit status of a failure: `plash run` ends as plash-exec, whose own
    /// failures are 125 so that a supervisor tells them from the program's status.
    let failureStatus: Int32

    init(name: String, synopsis: String, help: String, run: @escaping @Sendable ([String]) throws -> Int32,
         options: @autoclosure @escaping @Sendable () -> String = "", failureStatus: Int32 = 1) {
        self.name = name
        self.synopsis = synopsis
        self.help = help
        self.run = run
        self.makeOptions = options
        self.failureStatus = failureStatus
    }
}

let commands: [Command] = [
    Command(name: "init", synopsis: "", help: "Create the store (commands that need it create it too).", run: initStore),
    Command(name: "build", synopsis: "MACRO...", help: "Build an image (cached) and print its id.", run: build,
            options: "  MACRO...   the macros: plash help macros"),
    Command(name: "run", synopsis: "[EXEC-OPTIONS] IMAGE|MACRO... [--] [CMD...]",
            help: "Run CMD (default: the image's entrypoint and command, else root's shell) in an image, built first when given macros.", run: runCommand,
            options: runOptions, failureStatus: 125),
    Command(name: "rm", synopsis: "[--force] IMAGE...",
            help: "Remove images and every image built on them (not while a container uses them, unless --force).",
            run: remove, options: "  -f, --force   remove them even while containers use them"),
    Command(name: "ls", synopsis: "[--json]", help: "List images: id, parent, names, size, age, build script.", run: list,
            options: "  --json   one JSON array of objects: id, parent, names, size (bytes), age (seconds), script"),
    Command(name: "du", synopsis: "", help: "Show the disk space of each image, shared and its own, and what clean frees.",
            run: diskUsageCommand),
    Command(name: "nodepath", synopsis: "IMAGE [--allow-root-container]", help: "Print the image's node directory in the store.",
            run: nodepath, options: "  --allow-root-container   IMAGE may be 0, the empty root: its node is printed"),
    Command(name: "parent", synopsis: "IMAGE", help: "Print the id of the image below (0: none).", run: parent),
    Command(name: "inspect", synopsis: "IMAGE [--json]",
            help: "Show the image's config (Env, Entrypoint, Cmd, User, WorkingDir, ...) and history, as exports write them.",
            run: inspect, options: "  --json   podman image inspect's shape: an array of one object with Id, Created, Config, History, ..."),
    Command(name: "map", synopsis: "NAME [IMAGE] | -d NAME",
            help: "Name an image; with only NAME print its id; -d removes the name.", run: map,
            options: "  -d NAME   remove the name NAME (not the image)"),
    Command(name: "mount", synopsis: "IMAGE DIR", help: "Mount the image read-only at DIR.", run: mountCommand),
    Command(name: "umount", synopsis: "DIR", help: "Unmount what plash mount mounted at DIR.", run: umountCommand),
    Command(name: "import", synopsis: "busybox", help: "Import a built-in image and print its id.", run: importBuiltin),
    Command(name: "import-lxc", synopsis: "[--refresh] NAME[:RELEASE]",
            help: "Import an image server's root filesystem (PLASH_LXC_SERVER, default images.linuxcontainers.org) and print its id.",
            run: importLXCCommand, options: "  --refresh   resolve NAME[:RELEASE] on the server again, though it was resolved before"),
    Command(name: "import-url", synopsis: "[--refresh] URL",
            help: "Import a root filesystem tar downloaded from URL (once: again with --refresh) and print its id.",
            run: importURLCommand, options: "  --refresh   download it again, though an earlier import of URL exists"),
    Command(name: "import-debootstrap", synopsis: "[--refresh] SUITE [MIRROR]",
            help: "Build a Debian or Ubuntu root with mmdebstrap (minbase; once per SUITE and MIRROR) and print its id.",
            run: importDebootstrapCommand, options: "  --refresh   build it again, though an earlier import of SUITE and MIRROR exists"),
    Command(name: "import-tar", synopsis: "[FILE|-]",
            help: "Import a root filesystem from a tar (plain, gzip, xz, zstd, bzip2; default: stdin) and print its id.", run: importTarCommand),
    Command(name: "import-oci", synopsis: "DIR[:TAG]|FILE.tar[:TAG]",
            help: "Import the image an OCI image layout names (TAG, or its only image) and print its id.", run: importOCICommand),
    Command(name: "import-docker", synopsis: "[--refresh] REF",
            help: "Pull a registry's image ([HOST[:PORT]/]NAME[:TAG][@sha256:DIGEST], docker.io by default) once and print its id.",
            run: importDockerCommand, options: "  --refresh   resolve REF on the registry again and download only the layers that changed"),
    Command(name: "pull", synopsis: "REF",
            help: "Resolve a registry's REF again, download only the layers the store lacks, and print its id.",
            run: pullCommand),
    Command(name: "import-docker-archive", synopsis: "FILE",
            help: "Import the first image of a docker archive (docker save) and print its id.", run: importDockerArchiveCommand),
    Command(name: "export-tar", synopsis: "IMAGE [FILE|-]", help: "Write the image's files as a tar (default: to stdout).",
            run: exportTarCommand),
    Command(name: "export-oci", synopsis: "IMAGE DIR|FILE.tar|- [--tag TAG]",
            help: "Write the image as an OCI image layout, one layer per plash layer (imported ones as they came, built ones gzip).", run: exportOCICommand,
            options: "  --tag TAG   the name of the image in the layout (default: latest)"),
    Command(name: "export-docker-archive", synopsis: "IMAGE FILE|- [--tag REF]",
            help: "Write the image as a docker archive, as docker save does, for docker load and podman load.",
            run: exportDockerArchiveCommand, options: "  --tag REF   the name it loads as, NAME[:TAG] (default: none)"),
    Command(name: "push", synopsis: "IMAGE REF",
            help: "Upload the image to a registry as REF ([HOST[:PORT]/]NAME[:TAG]): the layers it lacks, then the manifest.",
            run: pushCommand),
    Command(name: "eval", synopsis: "MACRO...", help: "Print the shell script the macros expand to.", run: evalCommand),
    Command(name: "create", synopsis: "IMAGE [CMD [ARG...]]",
            help: "Run CMD (default /bin/sh) on the image as a build step, keep its writes as a new image, print its id.",
            run: create),
    Command(name: "add-layer", synopsis: "PARENT DIR",
            help: "Move DIR into the store as a new image on PARENT (0: none) and print its id.", run: addLayerCommand),
    Command(name: "copy", synopsis: "IMAGE DIR", help: "Copy the image's files into DIR (new or empty).", run: copy),
    Command(name: "with-mount", synopsis: "IMAGE [CMD [ARG...]]",
            help: "Run a host command in the image's mounted files (path in $PLASH_MOUNT).", run: withMount),
    Command(name: "runb", synopsis: "IMAGE CHANGESDIR [CMD [ARG...]]",
            help: "Run CMD in the image as a build step does, keeping its writes in CHANGESDIR.", run: runb,
            failureStatus: 125),
    Command(name: "runopts", synopsis: "-c IMAGE [-d CHANGESDIR] [-m PATH]... [--] [CMD [ARG...]]",
            help: "The original's run with its options: -d keeps the writes in CHANGESDIR, -m shares the host's PATH.",
            run: runopts, options: "  -c IMAGE        the image to run\n  -d CHANGESDIR   keep the container's writes there (plash-exec --persist)\n"
                + "  -m PATH         share the host's PATH at the same place (--bind-try); nothing else is shared",
            failureStatus: 125),
    Command(name: "seccomp", synopsis: "PROFILE | - [NAME]",
            help: "Compile a Docker/OCI seccomp profile for plash-exec --seccomp; print the BPF's path.", run: seccomp,
            options: "  - [NAME]   read the profile from stdin; NAME names it in errors"),
    Command(name: "ps", synopsis: "[--json]", help: "List the processes running in plash containers, with their image.", run: ps,
            options: "  --json   one JSON array of objects: pid, image, store, name, command"),
    Command(name: "kill", synopsis: "CGROUP|PID|IMAGE [SIGNAL]",
            help: "Signal (default TERM) every process of a cgroup, of PID's container, or of an image.", run: killCommand,
            options: "  SIGNAL   a name or number: TERM, -TERM, SIGTERM, 15, -15"),
    Command(name: "sudo", synopsis: "[CMD [ARG...]]",
            help: "Run a host command (default: your shell) as root of your user namespace (to remove store files of subordinate ids).",
            run: sudo),
    Command(name: "clean", synopsis: "[--clean-tmp] [--clean-cache-keys] [--clean-index]",
            help: "Remove build leftovers, names of removed images and empty plash cgroups.", run: clean,
            options: "  --clean-tmp          only what killed builds left in tmp/, and empty plash cgroups\n"
                + "  --clean-cache-keys   only names and cache keys of removed images\n"
                + "  --clean-index        only index links and nodes of removed images\n"
                + "  (no option: all of it; several: those parts)"),
    Command(name: "purge", synopsis: "[--yes] [--force]",
            help: "Remove every image (asks first unless --yes; not while containers run, unless --force).", run: purge,
            options: "  -y, --yes     do not ask\n  -f, --force   remove them even while containers use them"),
    Command(name: "shrink", synopsis: "", help: "Remove the older half of the images, but named and running ones.", run: shrink),
    Command(name: "data", synopsis: "[CMD [ARG...]]", help: "Print the store's directory, or run CMD in it.", run: data),
    Command(name: "doctor", synopsis: "", help: "Check what plash needs on this machine, for this user, and name each fix.",
            run: doctor),
    Command(name: "complete", synopsis: "commands|macros|images|options COMMAND",
            help: "Print words for shell completion, one a line.", run: complete),
    Command(name: "version", synopsis: "", help: "Print plash's version.", run: version),
    Command(name: "help", synopsis: "[macros|COMMAND]", help: "List the commands, or the macros.", run: help),
]

/// `plash COMMAND --help`: its usage, its line of help, and its options.
func commandHelp(_ command: Command) -> String {
    var text = "Usage: plash \(command.name) \(command.synopsis)\n\n\(command.help)"
    let rows = ["  -h, --help   show this help"] + (command.options.isEmpty ? [] : command.options.split(separator: "\n").map(String.init))
    return text + "\n\nOptions:\n" + alignedColumns(rows).joined(separator: "\n")
}

/// Option rows written `  LEFT   TEXT`, their texts lined up in one column.
func alignedColumns(_ rows: [String]) -> [String] {
    let split = rows.map { row -> (String, String)? in
        let chars = Array(row)
        guard row.hasPrefix("  "), chars.count > 5,
              let gap = (2...chars.count - 3).first(where: { chars[$0..<$0 + 3].allSatisfy { $0 == " " } }), gap > 2 else { return nil }
        return (String(chars[..<gap]), String(chars[gap...].drop { $0 == " " }))
    }
    let width = split.compactMap { $0?.0.count }.max() ?? 0
    return zip(rows, split).map { row, parts in
        guard let (left, text) = parts else { return row }
        return left + String(repeating: " ", count: width - left.count + 3) + text
    }
}

/// plash-exec's options that `plash run` passes on, from plash-exec's own table.
let runOptions: String = "EXEC-OPTIONS, passed on to plash-exec (see plash-exec --help):\n"
    + optionsHelp(execOptions.filter(\.passedByRun))
    + "Then IMAGE, an id or a name, or MACRO... to build one (plash help macros)."

let overview: String = {
    let width = commands.map(\.name.count).max()! + 2
    var text = "Usage: plash COMMAND [ARG...]\n       ./Plashfile [ARG...]\n\nCommands:\n"
    for command in commands {
        text += "  " + command.name.padding(to: width) + command.help + "\n"
    }
    text += "\nThe original plash's commands that plash replaced:\n"
    for name in replacedCommands.keys.sorted() { text += "  " + replacedCommands[name]! + "\n" }
    text += "\nplash help macros lists the macros of build and run. Exit status: 0, 1 failure, 2 usage."
    return text
}()

extension String {
    func padding(to width: Int) -> String { self + String(repeating: " ", count: max(width - count, 1)) }

    /// A table cell as ps(1) prints one: control characters (a newline, a tab, an escape
    /// sequence in a command line a container chose) become `?`, so a row stays one line
    /// and nothing reaches the terminal as a command.
    var printable: String {
        String(unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : Character($0) })
    }
}

/// Fails with usage unless the command got between `min` and `max` arguments and no
/// option it does not know.
/// Checks a command's arguments and returns its operands: the arguments without the
/// options, where `--` ends the options, as getopt's: what follows is an operand even
/// when it starts with '-'.
@discardableResult
func expect(_ arguments: [String], _ command: String, min: Int, max: Int, options: [String] = []) throws -> [String] {
    let entry = commands.first { $0.name == command }!
    let usage = "Usage: plash \(entry.name) \(entry.synopsis)"
    let end = arguments.firstIndex(of: "--") ?? arguments.endIndex
    if let unknown = arguments[..<end].first(where: { $0.hasPrefix("-") && $0 != "-" && !options.contains($0) }) {
        throw PlashError.usage("\(command): unknown option \(unknown)", usage: usage)
    }
    let operands = arguments[..<end].filter { !options.contains($0) } + arguments[end...].dropFirst()
    if operands.count < min { throw PlashError.usage("\(command): missing arguments", usage: usage) }
    if operands.count > max { throw PlashError.usage("\(command): too many arguments", usage: usage) }
    return operands
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
