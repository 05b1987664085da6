#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

/// Sets up the container that `plan` describes around this process, then becomes its
/// program: the table of contents of plash-exec, and the end of `plash run` too. Each
/// step happens in this order; docs/plash-exec.md tells why. A failure prints one line,
/// `PROGRAM: WHAT PATH: REASON`, and exits 125 (setup), 126 or 127 (the command).
public func runContainer(_ plan: ExecPlan, program: String) -> Never {
    do {
        if plan.dieWithParent { try dieWithParent() }
        let asRoot = geteuid() == 0
        let callerDirectory = currentDirectory()
        let store = dataDirectory()
        let imageLayers = try layers(of: plan.image, store: store)
        let filter = try systemCallFilter(plan, store: store)

        try enterCgroup(plan)
        try enterNamespaces(plan, asRoot: asRoot)
        try splitForPIDNamespace(plan)
        let root = try mountRoot(imageLayers, persist: plan.persist, asRoot: asRoot)
        try mountShared(sharedMounts(plan, home: environment("HOME"), callerDirectory: callerDirectory,
                                     hostHas: { access($0, F_OK) == 0 }),
                        into: root)
        try pivotRoot(to: root.fd, path: root.path)
        try enterWorkingDirectory(plan, callerDirectory: callerDirectory)
        try restrictSystemCalls(filter, noNewPrivileges: plan.noNewPrivileges)
        try execute(plan.command, environment: containerEnvironment(plan, caller: environment))
    } catch let error as PlashError {
        printLine(toStandardError: "\(program): \(error)")
        exit(error.execStatus)
    } catch {
        printLine(toStandardError: "\(program): \(error)")
        exit(125)
    }
}
