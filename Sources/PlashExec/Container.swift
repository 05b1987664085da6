#if canImport(Glibc)
import Glibc
#endif
import CPlashShims
import PlashSystem

/// Sets up the container that `plan` describes around this process, then becomes its
/// program: the table of contents of plash-exec, and the end of `plash run` too. Each
/// step happens in this order; docs/plash-exec.md tells why. A failure prints one line,
/// `PROGRAM: WHAT PATH: REASON`, and exits 125 (setup), 126 or 127 (the command).
/// `defaultCommand` runs when neither the plan nor the image's config names a program.
public func runContainer(_ plan: ExecPlan, program: String, defaultCommand: () -> [String] = { ["/bin/sh"] }) -> Never {
    var persistent: PersistentUpper? = nil
    do {
        // The program must not inherit --error-fd; it is written to only before the exec.
        if let fd = plan.errorDescriptor { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        if plan.dieWithParent { try dieWithParent() }
        let started = getpid()
        // Root that may mount: uid 0 without CAP_SYS_ADMIN (bwrap --unshare-user --uid 0,
        // a container that dropped it) takes an ordinary user's way, a user namespace.
        let asRoot = mountsAsRoot()
        let callerDirectory = currentDirectory()
        let store = dataDirectory()
        // Resolved while every path still means what it means on the host.
        let storePath = canonicalPath(store)
        let imageLayers = try layers(of: plan.image, store: store, canonicalStore: storePath)
        let config = imageLayers.config
        let plan = withImageUser(plan, image: config)
        let command = programArguments(plan, image: config) ?? defaultCommand()
        let filter = try systemCallFilter(plan, store: store)
        let shared = (plan.isolate ? isolatedMounts(plan, hostHas: hostHasPath)
            : sharedMounts(plan, home: environment("HOME"), callerDirectory: callerDirectory))
            + (try notifySocketBinds(plan, socket: environment("NOTIFY_SOCKET")))
        persistent = try plan.persist.map {
            try PersistentUpper.open($0, store: storePath, mustBeRootsAlone: plan.isolate && asRoot)
        }

        let oomCounter = try enterCgroup(plan, store: store)
        try enterNamespaces(plan, asRoot: asRoot)
        try splitForPIDNamespace(plan, oomCounter: oomCounter,
                                 oomLine: plan.limits.memory.map { oomLine(program, command: command, limit: $0) })
        let sources = try openSources(shared)
        // Without --persist the writable layer goes with the container, and with it
        // whatever mount points were made there.
        let root = try mountRoot(imageLayers, persist: persistent, hostRoot: asRoot && inFirstUserNamespace(),
                                 mountPoints: persistent == nil ? [] : mountPoints(plan, shared, sources: sources, store: storePath))
        if plan.isolate { try mountIsolatedFileSystems(into: root) }
        if plan.minimalDev { try mountMinimalDev(into: root) }
        try mountShared(shared, sources: sources, into: root, store: storePath)
        // Not recursive: binds, /dev and tmpfs mounts keep their own mode.
        if plan.readOnlyRoot { try check(plash_mount_set_readonly(root.fd, 0), "make read-only", "/") }
        try pivotRoot(to: root.fd, path: root.path, scratch: root.scratch)
        persistent = nil    // its paths are the host's; the lock's descriptor stays open
        try enterWorkingDirectory(plan, image: config, callerDirectory: callerDirectory)
        // HOME is the --user's own, as login(1) and docker set it; --env still wins.
        let home = try becomeUser(plan)
        try restrictSystemCalls(filter, noNewPrivileges: plan.noNewPrivileges, isolate: plan.isolate)
        let program = getpid()
        try execute(command, environment: containerEnvironment(plan, image: config?.environment) { name in
            name == "HOME" ? home ?? environment(name)
                : serviceManagerValue(name, caller: environment, started: started, program: program)
        })
    } catch let error as PlashError {
        persistent?.discard()
        reportFailure("\(program): \(error)", plan)
        exit(error.execStatus)
    } catch {
        persistent?.discard()
        reportFailure("\(program): \(error)", plan)
        exit(125)
    }
}

/// plash-exec's own failure, as one line: to --error-fd when given (a plash that runs a
/// build step or `create` reads it there and says it once), else to stderr.
func reportFailure(_ line: String, _ plan: ExecPlan) {
    guard let fd = plan.errorDescriptor else { return printLine(toStandardError: line) }
    let bytes = Array((line + "\n").utf8)
    if bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) != bytes.count { printLine(toStandardError: line) }
}
