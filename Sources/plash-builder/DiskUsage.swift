import PlashKit
import PlashSystem

/// `plash du`: per image its own layer, what it uses with the layers below, how much of
/// that is shared with other images and its own alone, what `plash rm` would free;
/// then what `plash clean` would free.
@Sendable func diskUsageCommand(_ arguments: [String]) throws -> Int32 {
    try expect(arguments, "du")
    let store = Store()
    // A store this user cannot read fails rather than look empty (as plash ls does).
    guard try store.isReadable() else { return 0 }
    let rows = try storeUsage(store)
    var table = [["ID", "LAYER", "TOTAL", "SHARED", "UNIQUE", "RM-FREES"]]
    for row in rows {
        table.append(["\(row.id)"] + [row.layer, row.total, row.shared, row.unique, row.removal].map(humanSize))
    }
    let widths = (0..<6).map { column in table.map { $0[column].count }.max()! }
    for line in table {
        print((0..<5).map { line[$0].padding(to: widths[$0] + 2) }.joined() + line[5])
    }
    let layers = rows.reduce(0) { $0 + $1.layer }
    print("\(rows.count) images, \(humanSize(layers)) in layers; plash clean frees \(humanSize(try leftoverUsage(store)))")
    return 0
}
