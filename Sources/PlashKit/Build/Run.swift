import PlashSystem
import PlashExec

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

public func parseRun(_ arguments: [String]) throws -> RunRequest {
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
        for word in macroWords where word.hasPrefix("-") && macro(named: word) == nil {
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

/// `plash run busybox`, `plash run alpine -- ls`: docker's `run IMAGE` names what plash
/// builds from a source first. For a name that is no image here (and no id), the same
/// command with `--from` (the built-in busybox) or `--image` (the image server's).
public func storedImageHint(_ request: RunRequest, found: (String) -> Bool) -> String? {
    guard case .stored(let name) = request.image, !name.allSatisfy(\.isASCIIDigit),
          StoreLayout.invalidReference(name) == nil, !found(name) else { return nil }
    let macro = name == "busybox" ? "--from" : "--image"
    let words = ["plash", "run"] + request.execOptions + [macro, name] + (request.command.isEmpty ? [] : ["--"] + request.command)
    let source = name == "busybox" ? "the built-in busybox" : "the image server's \(name)"
    return "no image \(name); to start from \(source): \(words.map(shellQuote).joined(separator: " "))"
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

func dockerHabit(_ name: String) -> PlashError? {
    dockerHabits.first { $0.names.contains(name) }.map { PlashError.usage("\(name): \($0.hint)", usage: runUsage) }
}

/// The images `plash shrink` removes: the oldest half, oldest first, leaves only (an
/// image that others build on stays while they do), so recent builds keep their bases.
/// Images in `keep` (named, in use) stay, and so does every image below them.
public func shrinkOrder(_ images: [(id: Int, parent: Int)], keep: Set<Int> = []) -> [Int] {
    var remaining = images
    var chosen: [Int] = []
    let target = (images.count + 1) / 2   // rounded up, as the original: one image goes
    while chosen.count < target {
        let parents = Set(remaining.map(\.parent))
        guard let leaf = remaining.filter({ !parents.contains($0.id) && !keep.contains($0.id) })
            .min(by: { $0.id < $1.id }) else { break }
        chosen.append(leaf.id)
        remaining.removeAll { $0.id == leaf.id }
    }
    return chosen
}

