// plash: the command people type. `plash run [EXEC-OPTIONS] IMAGE [--] [CMD...]` of an
// image the store already has becomes the container right here, as plash-exec does:
// this program holds only plash-exec's code (no Foundation, no TLS, no tar reader), so
// it starts as fast as plash-exec (docs/performance.md). Everything else, and any run
// it does not take just as it is (macros to build, an image the store lacks, a setting
// or option it would have to refuse), is plash-builder's: this process becomes it, with
// the same arguments, and it answers, or says why not, as `plash`.
#if canImport(Glibc)
import Glibc
#endif
import PlashExec
import PlashSystem

// A relative PLASH_DATA names the store of the directory plash started in, for what
// the container's program or plash-builder start after a chdir.
if let data = environment("PLASH_DATA"), !data.isEmpty, !data.hasPrefix("/") { setenv("PLASH_DATA", dataDirectory(), 1) }

let store = StoreLayout(path: dataDirectory())
if let (plan, node) = storedImageRun(in: store) {
    runContainer(plan, program: "plash", defaultCommand: { [defaultShell(layers: store.mountedLayers(of: node))] })
}
guard let builder = companionProgram("plash-builder") else {
    printLine(toStandardError: "plash: plash-builder not found beside \(ownPath) nor on PATH "
              + "(install plash's programs together with scripts/install, or put plash-builder on PATH)")
    exit(1)
}
execv(builder, CommandLine.unsafeArgv)
printLine(toStandardError: "plash: exec \(builder): \(String(cString: strerror(errno)))")
exit(1)

/// `plash run` of an image in `store`: its plan and the image's node; nil for any other
/// command line, and for a run that plash-builder must answer.
func storedImageRun(in store: StoreLayout) -> (ExecPlan, node: String)? {
    guard let arguments = try? commandLineArguments(), arguments.first == "run",
          (try? checkNumberSettings()) != nil, (try? checkOverlaySetting()) != nil,
          let request = try? parseRun(Array(arguments.dropFirst()), isMacro: { _ in true }),
          case .stored(let name) = request.image,
          let image = store.resolve(name) else { return nil }
    let (assignments, command) = leadingAssignments(of: request.command)
    guard var plan = try? execPlan(options: request.execOptions, image: .lowers([]), command: command) else { return nil }
    plan.environment += assignments
    plan.image = .resolved(id: image.id, node: image.node, store: store.path)
    return (plan, image.node)
}
