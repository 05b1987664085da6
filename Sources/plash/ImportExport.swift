#if canImport(Glibc)
import Glibc
#endif
import PlashKit
import PlashSystem

@Sendable func importBuiltin(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "import")
    guard builtinImages.contains(arguments[0]) else {
        throw PlashError.failure("import \(arguments[0]): unknown source (built in: busybox; tars: plash import-tar)")
    }
    print(try importBusybox(store: try openStore(), log: { printLine(toStandardError: $0) }).id)
    return 0
}

@Sendable func importLXCCommand(_ arguments: [String]) throws -> Int32 {
    let reference = try expect(arguments, "import-lxc")[0]
    guard isLXCReference(reference) else {
        throw PlashError.usage("import-lxc \(reference): not a NAME[:RELEASE]", usage: lookupCommand("import-lxc")!.usage)
    }
    // As import-tar: an ordinary user extracts as root of their own user namespace.
    try becomeRootOfUserNamespace()
    print(try importLXC(reference, refresh: hasFlag(arguments, "--refresh"), store: try openStore(),
                        log: { printLine(toStandardError: $0) }).id)
    return 0
}

@Sendable func importURLCommand(_ arguments: [String]) throws -> Int32 {
    let url = try expect(arguments, "import-url")[0]
    try checkURL(url, usage: lookupCommand("import-url")!.usage)
    // As import-tar: an ordinary user extracts as root of their own user namespace.
    try becomeRootOfUserNamespace()
    print(try importURL(url, refresh: hasFlag(arguments, "--refresh"), store: try openStore(),
                        log: { printLine(toStandardError: $0) }).id)
    return 0
}

@Sendable func importDebootstrapCommand(_ arguments: [String]) throws -> Int32 {
    let words = try expect(arguments, "import-debootstrap")
    guard isDebootstrapSuite(words[0]) else {
        throw PlashError.usage("import-debootstrap \(words[0]): not a suite name",
                               usage: lookupCommand("import-debootstrap")!.usage)
    }
    // mmdebstrap starts as the user (its unshare mode maps the subordinate ids itself);
    // then this process extracts its tar as root of the user's namespace, as import-tar.
    print(try importDebootstrap(words[0], mirror: words.count == 2 ? words[1] : nil, refresh: hasFlag(arguments, "--refresh"),
                                store: try openStore(), enterUserNamespace: becomeRootOfUserNamespace,
                                log: { printLine(toStandardError: $0) }).id)
    return 0
}

@Sendable func importTarCommand(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "import-tar")
    // An ordinary user extracts as root of their own user namespace, where the archive's
    // owners are their subordinate ids and chown works.
    try becomeRootOfUserNamespace()
    print(try importTar(arguments.first ?? "-", store: try openStore(), log: { printLine(toStandardError: $0) }).id)
    return 0
}

@Sendable func importOCICommand(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "import-oci")
    let inUserNamespace = geteuid() != 0
    try becomeRootOfUserNamespace()
    print(try importOCI(arguments[0], store: try openStore(), inUserNamespace: inUserNamespace,
                        log: { printLine(toStandardError: $0) }).id)
    return 0
}

@Sendable func importDockerCommand(_ arguments: [String]) throws -> Int32 {
    let reference = try expect(arguments, "import-docker")[0]
    do { _ = try RegistryReference(reference) } catch let error as PlashError {
        throw PlashError.usage("import-docker: " + (error.reason ?? reference), usage: lookupCommand("import-docker")!.usage)
    }
    return try pull(reference, refresh: hasFlag(arguments, "--refresh"), command: "import-docker")
}

/// `plash pull REF` is `plash import-docker --refresh REF`, its errors named `pull`.
@Sendable func pullCommand(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "pull")
    do { _ = try RegistryReference(arguments[0]) } catch let error as PlashError {
        throw PlashError.usage("pull: " + (error.reason ?? arguments[0]), usage: lookupCommand("pull")!.usage)
    }
    return try pull(arguments[0], refresh: true, command: "pull")
}

func pull(_ reference: String, refresh: Bool, command: String) throws -> Int32 {
    let inUserNamespace = geteuid() != 0
    try becomeRootOfUserNamespace()
    print(try importDocker(reference, refresh: refresh, command: command, store: try openStore(),
                           inUserNamespace: inUserNamespace, log: { printLine(toStandardError: $0) }).id)
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

@Sendable func importDockerArchiveCommand(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "import-docker-archive")
    let inUserNamespace = geteuid() != 0
    try becomeRootOfUserNamespace()
    print(try importDockerArchive(arguments[0], store: try openStore(), inUserNamespace: inUserNamespace,
                                  log: { printLine(toStandardError: $0) }).id)
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
