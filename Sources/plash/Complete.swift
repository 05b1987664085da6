import PlashExec
import PlashKit
import PlashSystem

/// `plash complete WHAT`: the words the shell completions (completions/) offer, one a
/// line, taken from the same tables the commands use so they never drift apart.
@Sendable func complete(_ arguments: [String]) throws -> Int32 {
    let arguments = try expect(arguments, "complete", min: 1, max: 2)
    switch arguments[0] {
    case "commands":
        commands.forEach { print($0.name) }
    case "macros":
        macros.flatMap(\.names).forEach { print($0) }
    case "images":
        let store = Store()
        guard store.exists else { return 0 }
        store.images().forEach { print($0.id) }
        store.names().forEach { print($0.name) }
    case "options":
        guard arguments.count == 2, let command = commands.first(where: { $0.name == arguments[1] }) else {
            throw PlashError.usage("complete options: name a command", usage: "Usage: plash complete options COMMAND")
        }
        let words = command.name == "run" ? execOptions.filter(\.passedByRun).map(\.name)
            : command.options.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\n" }).filter { $0.hasPrefix("-") }.map(String.init)
        (words + ["--help"]).forEach { print($0) }
    default:
        throw PlashError.usage("complete: unknown word list \(arguments[0])",
                               usage: "Usage: plash complete commands|macros|images|options COMMAND")
    }
    return 0
}
