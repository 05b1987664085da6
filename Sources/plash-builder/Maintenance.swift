#if canImport(Glibc)
import Glibc
#endif
import PlashKit
import PlashSystem

@Sendable func initStore(_ arguments: [String]) throws -> Int32 {
    try expect(arguments, "init")
    try Store().create()
    return 0
}

/// The original's flags for one part each; none: everything.
let cleanFlags: [String: Store.CleanParts] = ["--clean-tmp": .tmp, "--clean-cache-keys": .keys, "--clean-index": .index]

@Sendable func clean(_ arguments: [String]) throws -> Int32 {
    try expect(arguments, "clean")
    let parts = arguments.isEmpty ? .all : Store.CleanParts(arguments.compactMap { cleanFlags[$0] })
    let store = Store()
    // Checked as the user: root of the user's namespace could read a store of theirs
    // that they made unreadable.
    let readable = try store.isReadable()
    try becomeRootOfUserNamespace()   // store files may belong to subordinate ids
    if readable { try store.clean(parts) }
    if readable, parts.contains(.tmp), let hierarchy = try? CgroupHierarchy.current() { try store.removeEmptyCgroups(hierarchy) }
    return 0
}

@Sendable func purge(_ arguments: [String]) throws -> Int32 {
    try expect(arguments, "purge")
    let store = Store()
    guard try store.isReadable() else { return 0 }
    let running = containerProcesses(of: store)
    if !hasFlag(arguments, "--force", "-f") {
        if let process = running.first {
            throw PlashError.failure("purge: \(store.path) is in use: PID \(process.pid) runs "
                                     + "\(process.command.debugDescription) in image \(process.image)")
                .advising("--force removes every image anyway")
        }
    }
    if !hasFlag(arguments, "--yes", "-y") {
        _ = "plash: remove every image in \(store.path)? [y/N] ".withCString { write(2, $0, strlen($0)) }
        // As the original: anything but y keeps the store, and that is no failure.
        let answer = readLine() ?? ""
        guard answer == "y" || answer == "Y" else {
            printLine(toStandardError: "plash: purge: not confirmed, nothing removed")
            return 0
        }
    }
    try becomeRootOfUserNamespace()   // store files may belong to subordinate ids
    // Before their records go with the store.
    if let hierarchy = try? CgroupHierarchy.current() { try store.removeEmptyCgroups(hierarchy) }
    reportRemoved(try store.purge(keepingCounter: !running.isEmpty))
    return 0
}

/// Removes the older half of the images, but never a named one or one that a running
/// container uses (nor the images below them).
@Sendable func shrink(_ arguments: [String]) throws -> Int32 {
    try expect(arguments, "shrink")
    let store = Store()
    guard try store.isReadable() else { return 0 }
    let images = store.images()
    var keep = Set(store.names().map(\.id))
    for process in containerProcesses(of: store) { Int(process.image).map { _ = keep.insert($0) } }
    let ids = shrinkOrder(images.map { (id: $0.id, parent: store.parent(of: $0)) }, keep: keep)
    try becomeRootOfUserNamespace()   // store files may belong to subordinate ids
    reportRemoved(try store.remove(images.filter { ids.contains($0.id) }))
    return 0
}

/// `plash data [CMD...]`: the store's path, or CMD run there (`plash data touch config/x`).
@Sendable func data(_ arguments: [String]) throws -> Int32 {
    guard let name = arguments.first else {
        print(Store().path)
        return 0
    }
    let store = try openStore()
    try check(chdir(store.path), "chdir", store.path)
    let argv = arguments.map { strdup($0) } + [nil]
    execvp(name, argv)
    throw PlashError.hostCommand(name, errno: errno)
}

@Sendable func version(_ arguments: [String]) throws -> Int32 {
    try expect(arguments, "version")
    print("plash \(plashVersionLine)")
    return 0
}

@Sendable func help(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "help")
    guard let topic = arguments.first else { print(overview); return 0 }
    if topic == "macros" {
        print(macroHelp())
    } else if let command = commands.first(where: { $0.name == topic }) {
        print(commandHelp(command))
    } else {
        throw PlashError.usage("help: no command \(topic)", usage: overview)
    }
    return 0
}
