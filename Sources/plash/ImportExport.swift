#if canImport(Glibc)
import Glibc
#endif
import PlashKit
import PlashSystem

@Sendable func importBuiltin(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "import", min: 1, max: 1)
    guard arguments[0] == "busybox" else {
        throw PlashError.failure("import \(arguments[0]): unknown source (built in: busybox; tars: plash import-tar)")
    }
    print(try importBusybox(store: try openStore(), log: { printLine(toStandardError: $0) }).id)
    return 0
}

@Sendable func importLXCCommand(_ arguments: [String]) throws -> Int32 {
    let reference = try expect(arguments, "import-lxc", min: 1, max: 1, options: ["--refresh"])[0]
    guard isLXCReference(reference) else {
        throw PlashError.usage("import-lxc \(reference): not a NAME[:RELEASE]", usage: "Usage: plash import-lxc [--refresh] NAME[:RELEASE]")
    }
    // As import-tar: an ordinary user extracts as root of their own user namespace.
    try becomeRootOfUserNamespace()
    print(try importLXC(reference, refresh: arguments.contains("--refresh"), store: try openStore(),
                        log: { printLine(toStandardError: $0) }).id)
    return 0
}

@Sendable func importURLCommand(_ arguments: [String]) throws -> Int32 {
    let url = try expect(arguments, "import-url", min: 1, max: 1, options: ["--refresh"])[0]
    try checkURL(url, usage: "Usage: plash import-url [--refresh] URL")
    // As import-tar: an ordinary user extracts as root of their own user namespace.
    try becomeRootOfUserNamespace()
    print(try importURL(url, refresh: arguments.contains("--refresh"), store: try openStore(),
                        log: { printLine(toStandardError: $0) }).id)
    return 0
}

@Sendable func importDebootstrapCommand(_ arguments: [String]) throws -> Int32 {
    let words = try expect(arguments, "import-debootstrap", min: 1, max: 2, options: ["--refresh"])
    guard isDebootstrapSuite(words[0]) else {
        throw PlashError.usage("import-debootstrap \(words[0]): not a suite name",
                               usage: "Usage: plash import-debootstrap [--refresh] SUITE [MIRROR]")
    }
    // mmdebstrap starts as the user (its unshare mode maps the subordinate ids itself);
    // then this process extracts its tar as root of the user's namespace, as import-tar.
    print(try importDebootstrap(words[0], mirror: words.count == 2 ? words[1] : nil, refresh: arguments.contains("--refresh"),
                                store: try openStore(), enterUserNamespace: becomeRootOfUserNamespace,
                                log: { printLine(toStandardError: $0) }).id)
    return 0
}

@Sendable func importTarCommand(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "import-tar", min: 0, max: 1)
    // An ordinary user extracts as root of their own user namespace, where the archive's
    // owners are their subordinate ids and chown works.
    try becomeRootOfUserNamespace()
    print(try importTar(arguments.first ?? "-", store: try openStore(), log: { printLine(toStandardError: $0) }).id)
    return 0
}

@Sendable func importOCICommand(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "import-oci", min: 1, max: 1)
    let inUserNamespace = geteuid() != 0
    try becomeRootOfUserNamespace()
    print(try importOCI(arguments[0], store: try openStore(), inUserNamespace: inUserNamespace,
                        log: { printLine(toStandardError: $0) }).id)
    return 0
}

@Sendable func importDockerCommand(_ arguments: [String]) throws -> Int32 {
    let reference = try expect(arguments, "import-docker", min: 1, max: 1, options: ["--refresh"])[0]
    do { _ = try RegistryReference(reference) } catch let error as PlashError {
        throw PlashError.usage("import-docker: " + (error.reason ?? reference), usage: "Usage: plash import-docker [--refresh] REF")
    }
    let inUserNamespace = geteuid() != 0
    try becomeRootOfUserNamespace()
    print(try importDocker(reference, refresh: arguments.contains("--refresh"), store: try openStore(),
                           inUserNamespace: inUserNamespace, log: { printLine(toStandardError: $0) }).id)
    return 0
}

/// `plash pull REF` is `plash import-docker --refresh REF`.
@Sendable func pullCommand(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "pull", min: 1, max: 1)
    do { _ = try RegistryReference(arguments[0]) } catch let error as PlashError {
        throw PlashError.usage("pull: " + (error.reason ?? arguments[0]), usage: "Usage: plash pull REF")
    }
    return try importDockerCommand(["--refresh", arguments[0]])
}

@Sendable func pushCommand(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "push", min: 2, max: 2)
    do { _ = try RegistryReference(arguments[1]) } catch let error as PlashError {
        throw PlashError.usage("push: " + (error.reason ?? arguments[1]), usage: "Usage: plash push IMAGE REF")
    }
    // As export-oci: an ordinary user reads their layers as root of their user namespace.
    try becomeRootOfUserNamespace()
    let store = Store()
    try pushImage(try store.image(arguments[0]), to: arguments[1], store: store, log: { printLine(toStandardError: $0) })
    return 0
}

@Sendable func importDockerArchiveCommand(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "import-docker-archive", min: 1, max: 1)
    let inUserNamespace = geteuid() != 0
    try becomeRootOfUserNamespace()
    print(try importDockerArchive(arguments[0], store: try openStore(), inUserNamespace: inUserNamespace,
                                  log: { printLine(toStandardError: $0) }).id)
    return 0
}

@Sendable func exportTarCommand(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "export-tar", min: 1, max: 2)
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

/// `--tag VALUE` taken out of the arguments.
func takeTag(_ arguments: inout [String], _ command: String) throws -> String? {
    guard let at = arguments.firstIndex(of: "--tag") else { return nil }
    let entry = commands.first { $0.name == command }!
    guard at + 1 < arguments.count, !arguments[at + 1].isEmpty else {
        throw PlashError.usage("\(command): --tag needs a value", usage: "Usage: plash \(command) \(entry.synopsis)")
    }
    defer { arguments.removeSubrange(at...(at + 1)) }
    return arguments[at + 1]
}

@Sendable func exportOCICommand(_ arguments: [String]) throws -> Int32 {
    var arguments = arguments
    let tag = try takeTag(&arguments, "export-oci") ?? "latest"
    arguments = try expect(arguments, "export-oci", min: 2, max: 2)
    guard isOCIRefName(tag) else {
        throw PlashError.usage("export-oci: \(tag): not an OCI image name (letters and digits joined by one of -._:@+ or --, and /)",
                               usage: "Usage: plash export-oci IMAGE DIR|FILE.tar|- [--tag TAG]")
    }
    // As export-tar: an ordinary user reads their layers as root of their user namespace.
    try becomeRootOfUserNamespace()
    let store = Store()
    if arguments[1] != "-" { try refuseStorePath(arguments[1], store: store, what: "export-oci") }
    try exportOCI(try store.image(arguments[0]), to: arguments[1], tag: tag, store: store)
    return 0
}

@Sendable func exportDockerArchiveCommand(_ arguments: [String]) throws -> Int32 {
    var arguments = arguments
    let reference = try takeTag(&arguments, "export-docker-archive")
    arguments = try expect(arguments, "export-docker-archive", min: 2, max: 2)
    if let reference, dockerReference(reference) == nil {
        throw PlashError.usage("export-docker-archive: \(reference): not a docker reference (NAME[:TAG], lowercase name)",
                               usage: "Usage: plash export-docker-archive IMAGE FILE|- [--tag REF]")
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
    let arguments = try expect(arguments, "seccomp", min: 1, max: arguments.first == "-" ? 2 : 1)
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
