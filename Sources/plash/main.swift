// plash: the builder and manager. Each command lives in its own file; this is the table
// of contents and the one place that prints errors and picks exit codes.
#if canImport(Glibc)
import Glibc
#endif
import PlashKit
import PlashSystem

let arguments = Array(CommandLine.arguments.dropFirst())

do {
    guard let name = arguments.first else { throw UsageFailure("no command given", usage: overview) }
    let rest = Array(arguments.dropFirst())
    if let command = commands.first(where: { $0.name == name }) {
        if rest.first == "-h" || rest.first == "--help" {
            print("Usage: plash \(command.name) \(command.synopsis)\n\n\(command.help)")
            exit(0)
        }
        exit(try command.run(rest))
    }
    switch name {
    case "-h", "--help": print(overview); exit(0)
    case "--version": exit(try version(rest))
    default:
        // `#!/usr/bin/env plash` runs `plash ./Plashfile ARGS`.
        if name.contains("/"), isPlashfile(name) { exit(try runPlashfile(name, rest)) }
        throw UsageFailure(name.hasPrefix("-") ? "unknown option \(name)" : "unknown command \(name)", usage: overview)
    }
} catch let error as UsageFailure {
    printLine(toStandardError: "plash: \(error)")
    if !error.usage.isEmpty { printLine(toStandardError: error.usage) }
    exit(2)
} catch {
    printLine(toStandardError: "plash: \(error)")
    exit(1)
}
