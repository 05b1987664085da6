#if canImport(Glibc)
import Glibc
#endif
import PlashSystem
import PlashKit

@Sendable func remove(_ arguments: [String]) throws -> Int32 {
    let names = try expect(arguments, "rm")
    let store = Store()
    // Looked up as the user: root of the user's namespace could read a store of theirs
    // that they made unreadable.
    let images = try names.map { try store.image($0) }
    if !hasFlag(arguments, "--force", "-f") {
        try refuseImagesInUse(images, store: store, command: "rm")
    }
    try becomeRootOfUserNamespace()   // store files may belong to subordinate ids
    reportRemoved(try store.remove(images))
    return 0
}

@Sendable func list(_ arguments: [String]) throws -> Int32 {
    try expect(arguments, "ls")
    let store = Store()
    let readable = try store.isReadable()
    let rows = readable ? try listImages(store) : []
    if hasFlag(arguments, "--json") { print(try imagesJSON(rows)); return 0 }
    guard readable else { return 0 }
    var table = [["ID", "PARENT", "NAMES", "SIZE", "AGE", "SCRIPT"]]
    for row in rows {
        table.append(["\(row.id)", "\(row.parent)", row.names.isEmpty ? "-" : row.names.joined(separator: ","),
                      humanSize(row.size), humanAge(row.age), row.script].map(\.printable))
    }
    let widths = (0..<5).map { column in table.map { $0[column].count }.max()! }
    for line in table {
        print((0..<5).map { line[$0].padding(to: widths[$0] + 2) }.joined() + line[5])
    }
    return 0
}

@Sendable func nodepath(_ arguments: [String]) throws -> Int32 {
    // The original's option: 0, the empty root, is then a node too (add-layer's parent).
    let rootOption = "--allow-root-container"
    let id = try expect(arguments, "nodepath")[0]
    let store = Store()
    if id == "0" && arguments.contains(rootOption) && store.exists {
        print(store.rootNode)
        return 0
    }
    print(try store.image(id).node)
    return 0
}

@Sendable func parent(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "parent")
    let store = Store()
    print(store.parent(of: try store.image(arguments[0])))
    return 0
}

@Sendable func map(_ arguments: [String]) throws -> Int32 {
    let names = try expect(arguments, "map")
    let store = try openStore()
    if hasFlag(arguments, "-d") {
        guard names.count == 1 else { throw PlashError.usage("map -d: give one NAME", usage: lookupCommand("map")!.usage) }
        try store.unmap(names[0])
    } else if names.count == 2 && names[1].isEmpty {
        try store.unmap(names[0], missingIsFine: true)   // the original's `map NAME ''`
    } else if names.count == 1 {
        // As the original: a name that names nothing (never given, removed, its image
        // gone) prints nothing, so `test -z "$(plash map NAME)"` asks whether it is set.
        try store.checkName(names[0])
        if let image = store.lookup(names[0]) { print(image.id) }
    } else {
        try store.map(names[0], to: try store.image(names[1]))
    }
    return 0
}

@Sendable func mountCommand(_ arguments: [String]) throws -> Int32 {
    if arguments.count == 3 && !arguments[2].hasPrefix("-") {
        // The original's writable mount: a store image must not be written through a mount.
        throw PlashError.usage("mount: the original's CHANGESDIR is not offered, a mount is read-only; "
                               + "plash runb IMAGE CHANGESDIR CMD keeps writes there")
    }
    let arguments = try expect(arguments, "mount")
    let store = Store()
    try mountImage(try store.image(arguments[0]), store: store, at: arguments[1])
    return 0
}

@Sendable func umountCommand(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "umount")
    try unmountImage(arguments[0])
    return 0
}
