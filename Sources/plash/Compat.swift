#if canImport(Glibc)
import Glibc
#endif
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
    try expect(Array(arguments.prefix(1)), "create", min: 1, max: 1)
    let store = try openStore()
    let command = arguments.count > 1 ? Array(arguments.dropFirst()) : ["/bin/sh"]
    print(try Builder(store: store).create(on: try store.image(arguments[0]), command: command).id)
    return 0
}

@Sendable func addLayerCommand(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "add-layer", min: 2, max: 2)
    print(try addLayer(arguments[1], parent: arguments[0], store: try openStore()).id)
    return 0
}

@Sendable func copy(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "copy", min: 2, max: 2)
    try becomeRootOfUserNamespace()   // to mount, and to copy files of subordinate ids
    let store = Store()
    try copyImage(try store.image(arguments[0]), to: arguments[1], store: store)
    return 0
}

/// `plash with-mount IMAGE [CMD...]`: a host command in the image's mounted files, its
/// path in $PLASH_MOUNT; the mount is gone when plash exits.
@Sendable func withMount(_ arguments: [String]) throws -> Int32 {
    try expect(Array(arguments.prefix(1)), "with-mount", min: 1, max: 1)
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
    try expect(Array(arguments.prefix(2)), "runb", min: 2, max: 2)
    let store = Store()
    let image = try store.image(arguments[0])
    let command = arguments.count > 2 ? Array(arguments.dropFirst(2)) : ["/bin/sh"]
    // As a build step: not through the image's entrypoint.
    return try becomeContainer(["--persist", arguments[1]] + buildStepSharing + ["--entrypoint", ""], image: image, store: store,
                               command: command)
}

/// `plash runopts -c IMAGE [-d CHANGESDIR] [-m PATH]... [--] [CMD...]`, the original's
/// run with lower level options, as plash-exec's: -d is --persist, each -m a --bind-try
/// (a path missing on the host is skipped, as there), and nothing else of the host's
/// is shared: the original's `plash run` added /tmp and /home with -m.
@Sendable func runopts(_ arguments: [String]) throws -> Int32 {
    let usage = "Usage: plash runopts -c IMAGE [-d CHANGESDIR] [-m PATH]... [--] [CMD [ARG...]]"
    var image: String?
    var options = ["--no-tmp", "--no-home"]
    var rest = arguments[...]
    while let word = rest.first, word.hasPrefix("-"), word != "-" {
        rest.removeFirst()
        if word == "--" { break }
        // getopt's spellings: `-c 1` and `-c1`.
        let flag = String(word.prefix(2))
        guard ["-c", "-d", "-m"].contains(flag) else { throw PlashError.usage("runopts: unknown option \(word)", usage: usage) }
        var value = String(word.dropFirst(2))
        if value.isEmpty {
            guard let next = rest.popFirst() else { throw PlashError.usage("runopts: \(flag) needs a value", usage: usage) }
            value = next
        }
        switch flag {
        case "-c": image = value
        case "-d": options += ["--persist", value]
        default: options += ["--bind-try", value]
        }
    }
    guard let image else { throw PlashError.usage("runopts: missing -c option", usage: usage) }
    let store = try openStore()
    let found = try store.image(image)
    return try becomeContainer(options, image: found, store: store, command: Array(rest))
}

/// The user's login shell, for commands that open one.
func loginShell() -> String {
    guard let entry = getpwuid(getuid()), let shell = entry.pointee.pw_shell, shell.pointee != 0 else { return "/bin/sh" }
    return String(cString: shell)
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

/// Commands that take macros instead of an IMAGE, as in the original: `plash nodepath
/// --from 1 --run 'touch /a'` and `plash export-tar -f 1 --run … -- FILE` build first.
let commandsTakingMacros = [
    "nodepath", "parent", "rm", "mount", "export-tar", "create", "copy", "with-mount", "add-layer",
]

/// Builds the image that leading macros describe: `--from 1 --run X -- A B` -> `ID A B`.
func buildImageArgument(_ arguments: [String]) throws -> [String] {
    guard let first = arguments.first, isMacro(first) else { return arguments }
    let words = Array(arguments.prefix { $0 != "--" })
    let rest = Array(arguments.drop { $0 != "--" }.dropFirst())
    let image = try Builder(store: try openStore()).build(try parseMacros(words))
    return ["\(image.id)"] + rest
}
