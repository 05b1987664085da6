#if canImport(Glibc)
import Glibc
#endif
import PlashExec
import PlashKit
import PlashSystem

// The commands that scripts written for plash's first versions call, and hints for the
// spellings this design replaced.

/// `plash eval MACRO...`: the shell script the macros expand to; no macros: read them
/// from stdin, in Plashfile syntax.
@Sendable func evalCommand(_ arguments: [String]) throws -> Int32 {
    let words = arguments.isEmpty ? plashfileWords(try readAllStandardInput()) : arguments
    let script = try shellScript(try parseMacros(words))
    print(script, terminator: "")
    return 0
}

/// `plash create IMAGE [CMD...]`: CMD (default: /bin/sh reading stdin) in a new layer.
@Sendable func create(_ arguments: [String]) throws -> Int32 {
    try expect(arguments, "create")
    let store = try openStore()
    let command = arguments.count > 1 ? Array(arguments.dropFirst()) : ["/bin/sh"]
    print(try Builder(store: store).create(on: try store.image(arguments[0]), command: command).id)
    return 0
}

@Sendable func addLayerCommand(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "add-layer")
    print(try addLayer(arguments[1], parent: arguments[0], store: try openStore()).id)
    return 0
}

@Sendable func copy(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "copy")
    try becomeRootOfUserNamespace()   // to mount, and to copy files of subordinate ids
    let store = Store()
    try copyImage(try store.image(arguments[0]), to: arguments[1], store: store)
    return 0
}

/// `plash with-mount IMAGE [CMD...]`: a host command in the image's mounted files, its
/// path in $PLASH_MOUNT; the mount is gone when plash exits.
@Sendable func withMount(_ arguments: [String]) throws -> Int32 {
    try expect(arguments, "with-mount")
    let command = arguments.count > 1 ? Array(arguments.dropFirst()) : [loginShell()]
    try becomeRootOfUserNamespace()
    let store = Store()
    let image = try store.image(arguments[0])
    return try withMountedImage(image, store: store) { root in
        let caller = currentDirectory()
        try check(chdir(root), "chdir", root)
        defer { _ = caller.map { chdir($0) } }
        setenv("PLASH_MOUNT", root, 1)
        let end: Termination
        do { end = try spawnAndWait(command) } catch let error as PlashError where error.step == "run" {
            throw PlashError.hostCommand(command[0], errno: error.errno ?? ENOENT)
        }
        switch end {
        case .exited(let status): return status
        case .signaled(let signal): return 128 + signal
        }
    }
}

/// `plash runb IMAGE CHANGESDIR CMD...` (the C version's build runner): CMD in the image
/// as a build step runs, its writes kept in CHANGESDIR.
@Sendable func runb(_ arguments: [String]) throws -> Int32 {
    try expect(arguments, "runb")
    let store = Store()
    let image = try store.image(arguments[0])
    var plan = buildStepPlan(.lowers([]), persist: arguments[1])
    plan.command = arguments.count > 2 ? Array(arguments.dropFirst(2)) : ["/bin/sh"]
    becomeContainer(plan, image: image, store: store)
}

/// `plash runopts -c IMAGE [-d CHANGESDIR] [-m PATH]... [--] [CMD...]`, the original's
/// run with lower level options, as plash-exec's: -d is --persist, each -m a --bind-try
/// (a path missing on the host is skipped, as there), and nothing else of the host's
/// is shared: the original's `plash run` added /tmp and /home with -m.
@Sendable func runopts(_ arguments: [String]) throws -> Int32 {
    let entry = lookupCommand("runopts")!
    var image: String?
    var plan = ExecPlan(image: .lowers([]))
    plan.shareTmp = false
    plan.shareHome = false
    var rest = arguments[...]
    while let word = rest.first, word.hasPrefix("-"), word != "-" {
        rest.removeFirst()
        if word == "--" { break }
        // getopt's spellings: `-c 1` and `-c1`.
        let flag = String(word.prefix(2))
        guard entry.option(flag) != nil else { throw PlashError.usage("runopts: unknown option \(word)", usage: entry.usage) }
        var value = String(word.dropFirst(2))
        if value.isEmpty {
            guard let next = rest.popFirst() else { throw PlashError.usage("runopts: \(flag) needs a value", usage: entry.usage) }
            value = next
        }
        switch flag {
        case "-c": image = value
        case "-d": plan.persist = value
        default: plan.binds.append(Bind.ifPresent(value, value))
        }
    }
    guard let image else { throw PlashError.usage("runopts: missing -c option", usage: entry.usage) }
    let store = try openStore()
    let found = try store.image(image)
    plan.command = Array(rest)
    becomeContainer(plan, image: found, store: store)
}

/// The user's login shell, for commands that open one.
func loginShell() -> String {
    let uid = getuid()
    return PasswdEntry.host().first { $0.uid == uid && !$0.shell.isEmpty }?.shell ?? "/bin/sh"
}

/// Commands and options of the original that this design replaced or has not yet: one
/// line saying what to use instead.
let replacedCommands: [String: String] = [
    // Its hard links would share the store's files: a write to the copy changes the image.
    "shallow-copy": "shallow-copy is plash copy IMAGE DIR (a full copy) or plash mount IMAGE DIR (hard links into the store are not offered)",
    "help-macros": "help-macros is plash help macros",
    "--help-macros": "--help-macros is plash help macros",
    "list-macros": "list-macros is plash help macros",
    "mkdtemp": "mkdtemp: plash keeps its staging to itself; use mktemp -d",
    "test": "test: the original's test runner is scripts/original-tests in plash's source",
]

/// Commands that people bring from docker and podman, and what plash offers instead:
/// one line each, rather than "no such command".
let otherToolsCommands: [String: String] = [
    "images": "images is plash ls",
    "rmi": "rmi is plash rm IMAGE...",
    "exec": "exec: a plash container is a process: plash run IMAGE CMD starts a new one; "
        + "nsenter --target PID --all CMD enters a running one (PID from plash ps)",
    "logs": "logs: plash keeps none: a container's output goes where its caller sends it "
        + "(the terminal, a supervisor's log, journalctl for a systemd unit)",
    "start": "start: plash run IMAGE CMD, under a supervisor to keep it running (docs/supervisors.md)",
    "stop": "stop is plash kill CGROUP|PID|IMAGE [SIGNAL]",
    "commit": "commit is plash create IMAGE CMD (or plash build --from IMAGE --run CMD)",
    "tag": "tag is plash map NAME IMAGE",
    "save": "save is plash export-docker-archive IMAGE FILE (or plash export-oci)",
    "load": "load is plash import-docker-archive FILE (or plash import-oci)",
    "info": "info: plash doctor checks this machine, plash data prints the store's directory",
]

/// Builds the image that leading macros describe: `--from 1 --run X -- A B` -> `ID A B`.
/// The command's own options win (`rm -f` is --force, not --from).
func buildImageArgument(_ arguments: [String], of command: Command) throws -> [String] {
    guard let first = arguments.first, startsImage(first),
          !command.options.contains(where: { $0.names.contains(first) }) else { return arguments }
    let words = Array(arguments.prefix { $0 != "--" })
    let rest = Array(arguments.drop { $0 != "--" }.dropFirst())
    let image = try Builder(store: try openStore()).build(try parseMacros(words))
    return ["\(image.id)"] + rest
}
