#if canImport(Glibc)
import Glibc
#endif
import PlashKit
import PlashSystem

/// `plash import busybox`, `import-tar`, `import-oci`, `import-docker`, `pull`, ...: the
/// command of an image source (ImageSource.swift) imports what its arguments name and
/// prints the image's id.
func importCommand(_ kind: ImageSourceKind, _ command: ImageSourceKind.Command, _ arguments: [String]) throws -> Int32 {
    let words = try expect(arguments, command.name)
    let source = try kind.parse(words, SourceCaller(name: command.name, usage: lookupCommand(command.name)!.usage))
    let inUserNamespace = geteuid() != 0
    // An ordinary user extracts as root of their own user namespace, where the archive's
    // owners are their subordinate ids and chown works; mmdebstrap starts as the user
    // first (its unshare mode maps the subordinate ids itself).
    if kind.privilege == .rootOfUserNamespace { try becomeRootOfUserNamespace() }
    let enter: () throws -> Void = kind.privilege == .rootAfterStart ? { try becomeRootOfUserNamespace() } : {}
    let refresh = command.refresh == .always || hasFlag(arguments, "--refresh")
    let context = ImportContext(store: try openStore(), refresh: refresh, inUserNamespace: inUserNamespace,
                                enterUserNamespace: enter, command: command.name, log: { printLine(toStandardError: $0) })
    print(try source.importImage(context).id)
    return 0
}

@Sendable func pushCommand(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "push")
    do { _ = try RegistryReference(arguments[1]) } catch let error as PlashError {
        throw PlashError.usage("push: " + (error.reason ?? arguments[1]), usage: lookupCommand("push")!.usage)
    }
    // As export-oci: an ordinary user reads their layers as root of their user namespace.
    try becomeRootOfUserNamespace()
    let store = Store()
    print(try pushImage(try store.image(arguments[0]), to: arguments[1], store: store, log: { printLine(toStandardError: $0) }))
    return 0
}

@Sendable func exportTarCommand(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "export-tar")
    // An ordinary user reads their store as root of their own user namespace, where
    // files of subordinate ids are readable, and may mount the layers there.
    let inUserNamespace = geteuid() != 0
    try becomeRootOfUserNamespace()
    let store = Store()
    let file = arguments.count == 2 ? arguments[1] : "-"
    if file != "-" { try refuseStorePath(file, store: store, what: "export-tar") }
    try exportTar(try store.image(arguments[0]), to: file, store: store, inUserNamespace: inUserNamespace)
    return 0
}

@Sendable func exportOCICommand(_ arguments: [String]) throws -> Int32 {
    let tag = optionValue(arguments, "--tag") ?? "latest"
    let arguments = try expect(arguments, "export-oci")
    guard isOCIRefName(tag) else {
        throw PlashError.usage("export-oci: \(tag): not an OCI image name (letters and digits joined by one of -._:@+ or --, and /)",
                               usage: lookupCommand("export-oci")!.usage)
    }
    // As export-tar: an ordinary user reads their layers as root of their user namespace.
    try becomeRootOfUserNamespace()
    let store = Store()
    if arguments[1] != "-" { try refuseStorePath(arguments[1], store: store, what: "export-oci") }
    try exportOCI(try store.image(arguments[0]), to: arguments[1], tag: tag, store: store)
    return 0
}

@Sendable func exportDockerArchiveCommand(_ arguments: [String]) throws -> Int32 {
    let reference = optionValue(arguments, "--tag")
    let arguments = try expect(arguments, "export-docker-archive")
    if let reference, dockerReference(reference) == nil {
        throw PlashError.usage("export-docker-archive: \(reference): not a docker reference (NAME[:TAG], lowercase name)",
                               usage: lookupCommand("export-docker-archive")!.usage)
    }
    try becomeRootOfUserNamespace()
    let store = Store()
    if arguments[1] != "-" { try refuseStorePath(arguments[1], store: store, what: "export-docker-archive") }
    try exportDockerArchive(try store.image(arguments[0]), to: arguments[1], reference: reference, store: store)
    return 0
}

/// plash-exec runs this the first time it meets a profile (`- PROFILE`: as it read it,
/// on stdin), and loads the cached BPF after that (see docs/plash-exec.md).
@Sendable func seccomp(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "seccomp")
    if arguments.count == 2 && arguments[0] != "-" {
        throw PlashError.usage("seccomp: too many arguments (NAME names a profile read from stdin)", usage: lookupCommand("seccomp")!.usage)
    }
    let path = arguments[0]
    if path == "default" {
        throw PlashError.usage("seccomp default: the built-in filter needs no compiling (--seccomp default loads it as it is); a profile named so: ./default")
    }
    if path == "-" {
        let name = arguments.count == 2 ? arguments[1] : "stdin"
        let profile = try readAll(0, path: name, what: "seccomp profile", limit: seccompProfileLimit)
        print(try compileSeccompProfile(profile, named: name, store: try openStore().path))
    } else {
        print(try compileSeccompProfile(path, store: try openStore().path))
    }
    return 0
}
