// plash-exec: set up a container around this process, then become its program.
// Each step below happens in this order; docs/plash-exec.md tells why.
#if canImport(Glibc)
import Glibc
#endif
import PlashExec
import PlashSystem

func fail(_ error: Error, status: Int32) -> Never {
    printLine(toStandardError: "plash-exec: \(error)")
    exit(status)
}

do {
    let plan: ExecPlan
    switch try parse(Array(CommandLine.arguments.dropFirst())) {
    case .help: print(usage); exit(0)
    case .version: print("plash-exec \(version)"); exit(0)
    case .run(let parsed): plan = parsed
    }
    let asRoot = geteuid() == 0
    let callerDirectory = currentDirectory()
    let store = dataDirectory()
    let imageLayers = try layers(of: plan.image, store: store)
    let filter = try systemCallFilter(plan, store: store)

    try enterCgroup(plan)
    try enterNamespaces(plan, asRoot: asRoot)
    let root = try mountRoot(imageLayers, persist: plan.persist, asRoot: asRoot)
    try mountShared(sharedMounts(plan, home: environment("HOME"), callerDirectory: callerDirectory,
                                 hostHas: { access($0, F_OK) == 0 }),
                    into: root)
    try pivotRoot(to: root.fd, path: root.path)
    try enterWorkingDirectory(plan, callerDirectory: callerDirectory)
    try restrictSystemCalls(filter, noNewPrivileges: plan.noNewPrivileges)
    try execute(plan.command, environment: containerEnvironment(plan, caller: environment))
} catch let error as ExecError {
    fail(error, status: error.status)
} catch {
    fail(error, status: 125)
}
