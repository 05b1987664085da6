#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

/// `plash run [EXEC-OPTIONS] IMAGE [--] [CMD...]` and
/// `plash run [EXEC-OPTIONS] MACRO... [-- CMD...]`: plash-exec's runtime options come
/// first and pass through unchanged; then an image id or name, or macros to build one.
public struct RunRequest: Equatable {
    public enum Image: Equatable {
        case stored(String)
        case build([String])
    }
    public var execOptions: [String] = []
    public var image: Image
    public var command: [String] = []

    public init(execOptions: [String] = [], image: Image, command: [String] = []) {
        self.execOptions = execOptions
        self.image = image
        self.command = command
    }
}

/// The forms of `plash run`, after its name: the CLI's command table shows them too.
public let runSynopses = ["[EXEC-OPTIONS] IMAGE [--] [CMD [ARG...]]", "[EXEC-OPTIONS] MACRO... [-- CMD [ARG...]]"]

public let runUsage = "Usage: plash run " + runSynopses.joined(separator: "\n       plash run ")

/// `isMacro`: whether a word is a macro of plash's (PlashKit); the small `plash`, which
/// has no macro table, takes any as a build for plash-builder.
public func parseRun(_ arguments: [String], isMacro: (String) -> Bool) throws -> RunRequest {
    var rest = arguments[...]
    var options: [String] = []
    while let word = rest.first, word.hasPrefix("-"), word != "--" {
        let name = word.split(separator: "=", maxSplits: 1).first.map(String.init) ?? word
        guard let option = execOption(name), option.passedByRun else {
            if let habit = dockerHabit(name) { throw habit }
            break
        }
        rest.removeFirst()
        options.append(word)
        if option.takesValue && !word.contains("=") {
            guard let value = rest.popFirst() else { throw PlashError.usage("\(word): needs a value", usage: runUsage) }
            options.append(value)
        }
    }
    guard let first = rest.first, first != "--" else {
        throw PlashError.usage("no image: give an id, a name or macros (--from ...)", usage: runUsage)
    }
    if first.hasPrefix("-") {
        let macroWords = Array(rest.prefix { $0 != "--" })
        let command = Array(rest.drop { $0 != "--" }.dropFirst())
        for word in macroWords where word.hasPrefix("-") && !isMacro(word) {
            try refuseMisplaced(word, after: "the macros", example: "MACRO...")
        }
        return RunRequest(execOptions: options, image: .build(macroWords), command: command)
    }
    rest.removeFirst()
    if rest.first == "--" {
        rest.removeFirst()
    } else if let word = rest.first {
        // `plash run 2 --memory 1G` would run a program named --memory; after `--` it may.
        try refuseMisplaced(word, after: "the image", example: "IMAGE")
    }
    return RunRequest(execOptions: options, image: .stored(first), command: Array(rest))
}

/// An exec option or a docker habit where the image or the macros already began.
func refuseMisplaced(_ word: String, after what: String, example: String) throws {
    let name = word.split(separator: "=", maxSplits: 1).first.map(String.init) ?? word
    if let option = execOption(name), option.passedByRun {
        let value = option.value.map { " " + $0 } ?? ""
        throw PlashError.usage("\(name): options go before \(what): plash run \(name)\(value) \(example) ...", usage: runUsage)
    }
    if let habit = dockerHabit(name) { throw habit }
}

/// What people who come from docker type first, and plash's way to say it.
let dockerHabits: [(names: [String], hint: String)] = [
    (["-it", "-ti", "-i", "-t", "--interactive", "--tty"],
     "not needed: the program has this terminal and stdin already (it is this very process)"),
    (["--rm"], "not needed: a container leaves nothing behind (--persist DIR keeps its writes)"),
    (["-v", "--volume"], "use --bind SRC:DST (--ro-bind for a read-only one)"),
    (["-e"], "use --env NAME=VALUE"),
    (["-p", "--publish"], "not needed: the container shares the host's network (--net none for none)"),
    (["--network"], "use --net none for a network of its own; by default the host's is shared"),
    (["-w", "--workdir"], "use --cwd DIR"),
    (["-u"], "use --user USER[:GROUP]"),
    (["-d", "--detach"], "not supported: start it under a supervisor (runit, systemd) or with the shell's &"),
    (["-m"], "use --memory SIZE"),
    (["--name"], "use --cgroup NAME to name and find the container (plash ps, plash kill)"),
]

public func dockerHabit(_ name: String) -> PlashError? {
    dockerHabits.first { $0.names.contains(name) }.map { PlashError.usage("\(name): \($0.hint)", usage: runUsage) }
}

/// `plash run 1 A=1 CMD`: the assignments that start a command, as env(1) takes them
/// (as the original ran commands through it), and the command after them.
public func leadingAssignments(of command: [String]) -> (assignments: [String], command: [String]) {
    let count = command.prefix { word in
        word.firstIndex(of: "=").map { isVariableName(String(word[..<$0])) } ?? false
    }.count
    return (Array(command.prefix(count)), Array(command.dropFirst(count)))
}

/// A shell variable's name: what `plash run 1 A=1 CMD` takes as an assignment, as env(1).
public func isVariableName(_ name: String) -> Bool {
    guard let first = name.first, first == "_" || (first.isASCII && first.isLetter) else { return false }
    return name.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
}
