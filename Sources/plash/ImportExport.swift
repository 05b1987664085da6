#if canImport(Glibc)
import Glibc
#endif
import PlashKit
import PlashSystem

@Sendable func importBuiltin(_ arguments: [String]) throws -> Int32 {
    try expect(arguments, "import", min: 1, max: 1)
    guard arguments[0] == "busybox" else {
        throw PlashError.failure("import \(arguments[0]): unknown source (built in: busybox; tars: plash import-tar)")
    }
    print(try importBusybox(store: try openStore(), log: { printLine(toStandardError: $0) }).id)
    return 0
}

@Sendable func importLXCCommand(_ arguments: [String]) throws -> Int32 {
    try expect(arguments, "import-lxc", min: 1, max: 1, options: ["--refresh"])
    let reference = arguments.first { $0 != "--refresh" }!
    guard isLXCReference(reference) else {
        throw PlashError.usage("import-lxc \(reference): not a NAME[:RELEASE]", usage: "Usage: plash import-lxc [--refresh] NAME[:RELEASE]")
    }
    print(try importLXC(reference, refresh: arguments.contains("--refresh"), store: try openStore(),
                        log: { printLine(toStandardError: $0) }).id)
    return 0
}

@Sendable func importURLCommand(_ arguments: [String]) throws -> Int32 {
    try expect(arguments, "import-url", min: 1, max: 1, options: ["--refresh"])
    let url = arguments.first { $0 != "--refresh" }!
    try checkURL(url, usage: "Usage: plash import-url [--refresh] URL")
    print(try importURL(url, refresh: arguments.contains("--refresh"), store: try openStore(),
                        log: { printLine(toStandardError: $0) }).id)
    return 0
}

@Sendable func importTarCommand(_ arguments: [String]) throws -> Int32 {
    try expect(arguments, "import-tar", min: 0, max: 1)
    // An ordinary user extracts as root of their own user namespace, where the archive's
    // owners are their subordinate ids and chown works.
    try becomeRootOfUserNamespace()
    print(try importTar(arguments.first ?? "-", store: try openStore(), log: { printLine(toStandardError: $0) }).id)
    return 0
}

@Sendable func exportTarCommand(_ arguments: [String]) throws -> Int32 {
    try expect(arguments, "export-tar", min: 1, max: 2)
    // An ordinary user reads their store as root of their own user namespace, where
    // files of subordinate ids are readable, and may mount the layers there.
    let inUserNamespace = geteuid() != 0
    try becomeRootOfUserNamespace()
    let store = Store()
    try exportTar(try store.image(arguments[0]), to: arguments.count == 2 ? arguments[1] : "-", store: store,
                  inUserNamespace: inUserNamespace)
    return 0
}

/// plash-exec runs this the first time it meets a profile, and loads the cached BPF
/// after that (see docs/plash-exec.md).
@Sendable func seccomp(_ arguments: [String]) throws -> Int32 {
    try expect(arguments, "seccomp", min: 1, max: 1)
    print(try compileSeccompProfile(arguments[0], store: try openStore().path))
    return 0
}
