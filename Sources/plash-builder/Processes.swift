#if canImport(Glibc)
import Glibc
#endif
import PlashKit
import PlashSystem

/// `plash ps`: every process in a plash container, with its image.
@Sendable func ps(_ arguments: [String]) throws -> Int32 {
    try expect(arguments, "ps")
    let store = Store()
    let names = Dictionary(store.names().map { (String($0.id), $0.name) }, uniquingKeysWith: { first, _ in first })
    if hasFlag(arguments, "--json") { print(try processesJSON(containerProcesses(), store: store, names: names)); return 0 }
    var rows = [["PID", "IMAGE", "NAME", "COMMAND"]]
    for process in containerProcesses() {
        // Images of other stores (another user's, another PLASH_DATA) show as ID@STORE.
        let ours = process.store == nil || process.runs(in: store)
        rows.append([String(process.pid), ours ? process.image : "\(process.image)@\(process.store!)",
                     ours ? names[process.image] ?? "-" : "-", process.command].map(\.printable))
    }
    let widths = (0..<3).map { column in rows.map { $0[column].count }.max()! }
    for row in rows {
        print((0..<3).map { row[$0].padding(to: widths[$0] + 2) }.joined() + row[3])
    }
    return 0
}

/// `plash kill TARGET [SIGNAL]`: signal every process of a cgroup, a container or an image.
@Sendable func killCommand(_ arguments: [String]) throws -> Int32 {
    guard arguments.count == 1 || arguments.count == 2, !arguments[0].hasPrefix("-") else {
        throw PlashError.usage("kill: expected a target and maybe a signal", usage: lookupCommand("kill")!.usage)
    }
    var signal = SIGTERM
    if arguments.count == 2 {
        guard let number = signalNumber(arguments[1]) else { throw PlashError.usage("kill: unknown signal \(arguments[1])") }
        signal = number
    }
    let pids = try processes(of: arguments[0], store: Store())
    guard !pids.isEmpty else { throw PlashError.failure("no processes for \(arguments[0])") }
    for pid in pids { kill(pid, signal) }
    return 0
}
