#if canImport(Glibc)
import Glibc
#endif
import PlashExec
import PlashKit
import PlashSystem

/// `plash build MACRO...`: the id on stdout, everything else on stderr.
@Sendable func build(_ arguments: [String]) throws -> Int32 {
    if arguments.isEmpty { throw PlashError.usage("build: no macros given", usage: buildUsage) }
    let plan = try parseMacros(arguments)
    let image = try Builder(store: try openStore()).build(plan)
    print(image.id)
    return 0
}

@Sendable func runCommand(_ arguments: [String]) throws -> Int32 {
    let request = try parseRun(arguments)
    let (assignments, command) = leadingAssignments(of: request.command)
    // The image is found once, here; plash-exec's steps take it as found.
    var plan = try execPlan(options: request.execOptions, image: .lowers([]), command: command)
    let store: Store
    let image: Store.Image
    switch request.image {
    case .stored(let name):
        store = Store()
        if let hint = storedImageHint(request, found: { store.lookup($0) != nil }) { throw PlashError.failure(hint) }
        image = try store.image(name)
    case .build(let words):
        let buildPlan = try parseMacros(words)
        store = try openStore()
        image = try Builder(store: store).build(buildPlan)
        plan = addingRunSettings(of: buildPlan, to: plan)
    }
    plan.environment += assignments
    becomeContainer(plan, image: image, store: store)
}

/// A Plashfile starts with `#!/usr/bin/env plash` (or names plash otherwise); a path
/// that is none (missing, a directory, a text, a FIFO nobody writes) is a usage error
/// that says why.
func checkPlashfile(_ path: String) throws {
    let fd: Int32
    do { fd = try openToRead(path, what: "open") } catch let error as PlashError {
        throw PlashError.usage("\(path): \(String(cString: strerror(error.errno ?? EIO)))")
    }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 256)
    let count = read(fd, &buffer, buffer.count)
    guard count >= 0 else { throw PlashError.usage("\(path): \(String(cString: strerror(errno)))") }
    let line = String(decoding: buffer[0..<count].prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
    guard line.hasPrefix("#!") && line.contains("plash") else {
        throw PlashError.usage("\(path): not a Plashfile (its first line is not #!/usr/bin/env plash)")
    }
}

/// `./Plashfile ARGS`: build what the file says (cached), then run its entrypoint with
/// ARGS, or ARGS as a command when it has none. It is read and built in its own
/// directory, as the original did, so the paths in it (--eval-file, --hash-path) are
/// relative to it (to the file's own, when reached through a symlink); the program runs
/// in the caller's.
func runPlashfile(_ path: String, _ arguments: [String]) throws -> Int32 {
    let text = String(decoding: try readFile(path, what: "read"), as: UTF8.self)
    let store = try openStore()   // before the chdir: PLASH_DATA may be relative
    let caller = currentDirectory()
    // A symlink to the Plashfile (in ~/bin) reads the files beside the Plashfile itself.
    let directory = splitLast(canonicalPath(path) ?? path).0
    try check(chdir(directory), "chdir", directory)
    let plan: BuildPlan
    do { plan = try parseMacros(plashfileWords(text)) } catch let error as PlashError where error.kind == .usage {
        throw PlashError.usage("\(path): \(error.description)")
    }
    // The original's Plashfiles (`#!/usr/bin/env plash-exec`) ran only an entrypoint and
    // failed without one, before building; they keep doing so.
    let firstLine = text.prefix { $0 != "\n" && $0 != "\r\n" }
    if !plan.hasEntrypoint && firstLine.hasPrefix("#!") && firstLine.contains("plash-exec") {
        throw PlashError.failure("\(path): no --entrypoint (a Plashfile for plash-exec runs its entrypoint)")
            .advising("add --entrypoint /bin/sh, or start it #!/usr/bin/env plash")
    }
    let image = try Builder(store: store).build(plan)
    if let caller { try check(chdir(caller), "chdir", caller) }
    // The arguments are the command: after the entrypoint (--entrypoint is the image's).
    // Without one they are a command as `plash run IMAGE -- CMD` takes it, `--` first
    // (`plash ./Plashfile -- echo hi`); an entrypoint gets every argument, `--` too.
    var exec = addingRunSettings(of: plan, to: ExecPlan(image: .lowers([])))
    exec.command = !plan.hasEntrypoint && arguments.first == "--" ? Array(arguments.dropFirst()) : arguments
    becomeContainer(exec, image: image, store: store)
}

/// Becomes the container's program, as plash-exec would: same PID, same stdin, stdout
/// and stderr, the program's exit status. The steps run right here rather than in an
/// exec'ed plash-exec: a second exec costs more than a millisecond (docs/performance.md).
/// The image's config applies as in plash-exec; where it names no program either, root's
/// shell runs. The plan's image is replaced by `image`, found in `store`.
func becomeContainer(_ plan: ExecPlan, image: Store.Image, store: Store) -> Never {
    var plan = plan
    plan.image = .resolved(id: image.id, node: image.node, store: store.path)
    runContainer(plan, program: "plash", defaultCommand: { [defaultShell(layers: store.layout.mountedLayers(of: image.node))] })
}
