#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PlashExec
import PlashSystem

/// The macros that Plashfiles of plash's first (Python and C) versions use, beside the
/// ones in `macros`; docs/macros.md tells which of them this design replaced.
let compatibilityMacros: [Macro] = [
    Macro(names: ["--import-env"], arguments: .oneOrMore("NAME[:INNER]"),
          help: "give the build the caller's value of NAME (as INNER); the value is part of the cache key", splitsLine: true) { parser, args in
        for spec in args {
            let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
            guard let name = parts.first, let value = environment(name) else { continue }
            let inner = parts.count == 2 ? parts[1] : name
            guard isVariableName(inner) else { throw PlashError.usage("--import-env \(spec): not a variable name", usage: buildUsage) }
            parser.plan.current.environment.removeAll { $0 == inner || $0.hasPrefix(inner + "=") }
            parser.plan.current.environment.append(inner + "=" + value)
        }
    },
    Macro(names: ["--env-prefix"], arguments: .oneOrMore("PREFIX"),
          help: "plash run and Plashfiles pass the caller's variables starting with PREFIX", splitsLine: true) { parser, args in
        parser.plan.runEnvironmentPrefixes += args
    },
    Macro(names: ["--mount"], arguments: .oneOrMore("SRC[:DST]"),
          help: "plash run and Plashfiles bind the host path SRC to DST (default SRC) inside", splitsLine: true) { parser, args in
        for spec in args {
            let parts = spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard parts.allSatisfy({ $0.hasPrefix("/") }) else {
                throw PlashError.usage("--mount \(spec): SRC and DST must be absolute paths", usage: buildUsage)
            }
            parser.plan.runBinds.append(Bind(parts[0], parts.count == 2 ? parts[1] : parts[0]))
        }
    },
    Macro(names: ["--hint"], arguments: .oneOrMore("NAME [VALUE]"),
          help: "image ID (as --from), exec CMD (as --entrypoint), use-env NAME (run gets NAME), layer; others are ignored") { parser, args in
        // A Plashfile line `--hint use-env HOME` gives one argument: split it as the original did.
        let words = args.count == 1 ? blankSeparated(args[0]) : args
        let value = Array(words.dropFirst())
        switch words.first {
        case "image"?:
            guard value.count == 1 else { throw PlashError.usage("--hint image: give one ID", usage: buildUsage) }
            try setSource(.any(value[0]), &parser)
        case "exec"?:
            guard !value.isEmpty else { throw PlashError.usage("--hint exec: give a command", usage: buildUsage) }
            setEntrypoint(value, &parser)
        case "use-env"?:
            parser.plan.runEnvironment += value
        case "layer"?:
            endLayer(&parser)
        default:
            break   // hints were notes for other programs; plash reads only these
        }
    },
    Macro(names: ["--defpm"], arguments: .oneOrMore("NAME CMD-TEMPLATE..."),
          help: "define the macro --NAME PKG...: runs each CMD-TEMPLATE with {} replaced by the packages") { parser, args in
        let name = args[0]
        guard args.count > 1, !name.isEmpty, !name.hasPrefix("-"), name.allSatisfy({ !$0.isWhitespace }) else {
            throw PlashError.usage("--defpm: give a NAME and at least one command template", usage: buildUsage)
        }
        let templates = Array(args.dropFirst())
        parser.defined.append(Macro(names: ["--" + name], arguments: .some("PKG"), help: "install packages with \(name)",
                                    splitsLine: true) {
            parser, packages in
            let quoted = packages.map(shellQuote).joined(separator: " ")
            guard !quoted.isEmpty else { return }
            parser.plan.current.steps += templates.map { $0.replacingOccurrences("{}", with: quoted) }
        })
    },
    Macro(names: ["--#"], arguments: .some("TEXT"), help: "a comment: ignored, with its words") { _, _ in },
    Macro(names: ["--from-github"], arguments: .oneOrMore("USER/REPO [FILE]"),
          help: "start from the image that FILE (default plashfile) of a GitHub repository builds") { parser, args in
        // The build it names is parsed apart, but includes are counted as one: a
        // plashfile that starts from itself is refused, not fetched for ever.
        let url = try gitHubURL(args, macro: "--from-github")
        try parser.enter("--from-github", url, identity: "url " + url)
        var inner = MacroParser(plashfileWords(try fetchMacros(url, macro: "--from-github")), readStdin: parser.readStdin)
        inner.evaluating = parser.evaluating.map { ($0.name, $0.identity, -1) }   // read until the inner parse ends
        inner.evaluated = parser.evaluated
        let plan = try inner.parse()
        parser.evaluated = inner.evaluated
        try setSource(.build(plan), &parser)
    },
    Macro(names: ["--eval-github"], arguments: .oneOrMore("USER/REPO [FILE]"),
          help: "read more macros from FILE (default plashfile) of a GitHub repository") { parser, args in
        let url = try gitHubURL(args, macro: "--eval-github")
        try parser.evaluateURL(url, macro: "--eval-github") { try fetchMacros(url, macro: "--eval-github") }
    },
    Macro(names: ["--eval-url"], arguments: .one("URL"), help: "read more macros from a file at an http(s) URL") {
        parser, args in
        try checkURL(args[0], usage: buildUsage)
        try parser.evaluateURL(args[0], macro: "--eval-url") { try fetchMacros(args[0], macro: "--eval-url") }
    },
    Macro(names: ["--refresh"], arguments: .none,
          help: "resolve what " + imageSources.filter { $0.commands.contains { $0.refresh != .never } }.compactMap(\.macro)
            .joined(separator: ", ") + " or --from NAME name again, not the copy imported before") { parser, _ in
        parser.plan.refresh = true
    },
]

/// Macros of the original that this design has no place for, and what to use instead:
/// the parser says so in one line instead of "unknown macro".
public let replacedMacros: [(name: String, hint: String)] = [
    ("--import", "--import loaded the original's Python macro modules; plash has none: define macros with --defpm, or read them with --eval-file"),
    ("--reset-imports", "--reset-imports unloaded the original's Python macro modules; plash has none"),
]

func endLayer(_ parser: inout MacroParser) {
    if !parser.plan.current.isEmpty {
        let environment = parser.plan.current.environment
        parser.plan.layers.append(LayerSpec())
        parser.plan.current.environment = environment
    }
}

func setEntrypoint(_ command: [String], _ parser: inout MacroParser) {
    let line = "exec " + command.map(shellQuote).joined(separator: " ") + " \"$@\""
    parser.plan.current.steps.append(writeFileStep(entrypointPath, ["#!/bin/sh", line], executable: true,
                                                   described: ["entrypoint"] + command.map(shellQuote)))
    setEntrypointScript(&parser)
}

/// The script at /.plash-entrypoint becomes the image's Entrypoint: `plash run`,
/// plash-exec and Plashfiles run it with the command as its arguments.
func setEntrypointScript(_ parser: inout MacroParser) {
    parser.plan.current.config.append(ConfigChange(macro: "--config-entrypoint", values: [entrypointPath]))
    parser.plan.hasEntrypoint = true
}

/// `--\ TEXT` is the argument TEXT even when it starts with '-', `--\` an empty one.
func escapedArgument(_ word: String) -> String? {
    if word == "--\\" { return "" }
    if word.hasPrefix("--\\ ") { return String(word.dropFirst(4)) }
    return nil
}

func escaped(_ argument: String) -> String { "--\\ " + argument }

func blankSeparated(_ text: String) -> [String] {
    text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
}

/// `USER/REPO [FILE]` of raw.githubusercontent.com, or of $PLASH_GITHUB_URL (tests serve
/// one on 127.0.0.1), on the repository's default branch: GitHub resolves `HEAD` to it,
/// be it master or main.
func gitHubURL(_ args: [String], macro: String) throws -> String {
    let repository = args[0]
    let parts = repository.split(separator: "/", omittingEmptySubsequences: false)
    guard args.count <= 2, parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
        throw PlashError.usage("\(macro): expected USER/REPO [FILE]", usage: buildUsage)
    }
    let base = environment("PLASH_GITHUB_URL") ?? "https://raw.githubusercontent.com"
    return base + "/" + repository + "/HEAD/" + (args.count == 2 ? args[1] : "plashfile")
}

/// Macros fetched over HTTP, read into memory: at most 1 MiB, so that a server that
/// sends without end fails the build instead of filling the memory.
func fetchMacros(_ url: String, macro: String) throws -> String {
    do {
        return String(decoding: try httpGet(url, limit: 1 << 20), as: UTF8.self)
    } catch let error as PlashError {
        throw error.context("\(macro) \(url)")
    }
}

/// What `plash eval` prints: the shell script the macros expand to, one layer after
/// another, with the original's `### plash hint:` lines for what is not a command.
public func shellScript(_ plan: BuildPlan) throws -> String {
    var lines: [String] = []
    switch plan.source {
    case .any(let name)?, .id(let name)?, .name(let name)?: lines.append("### plash hint: image=\(name)")
    case .imported(let name, let arguments)?:
        lines.append("### plash hint: image=" + (imageSource(named: name)?.hint(arguments) ?? name))
    case .build?: lines.append("### plash hint: image=(a Plashfile's build)")
    case nil: break
    }
    for (index, layer) in plan.layers.enumerated() where !layer.isEmpty || index == 0 {
        if index > 0 { lines.append("### plash hint: layer") }
        for entry in layer.environment {
            if let equals = entry.firstIndex(of: "=") {
                lines.append(String(entry[..<equals]) + "=" + shellQuote(String(entry[entry.index(after: equals)...])))
            } else {
                lines.append("### plash hint: env=\(entry)")
            }
        }
        lines += layer.steps
        for path in layer.hashPaths {
            var hash = SHA256()
            try hashTree(path, into: &hash)
            lines.append(": hash-path \(shellQuote(path)) \(hash.hexDigest())")
        }
        if layer.invalidate { lines.append(": invalidate-layer") }
        lines += layer.config.map { "### plash hint: config=" + $0.macroLine }
    }
    lines += plan.runBinds.map { "### plash hint: mount=\($0.spec)" }
    lines += plan.runEnvironment.map { "### plash hint: use-env=\($0)" }
    lines += plan.runEnvironmentPrefixes.map { "### plash hint: env-prefix=\($0)" }
    if plan.hasEntrypoint { lines.append("### plash hint: exec=\(entrypointPath)") }
    return lines.map { $0 + "\n" }.joined()
}

/// What `plash run MACRO...` and a Plashfile add to the container for the build plan:
/// its --mount binds and use-env hints, and the caller's variables that --env-prefix
/// names.
public func addingRunSettings(of plan: BuildPlan, to exec: ExecPlan) -> ExecPlan {
    var exec = exec
    exec.binds += plan.runBinds
    exec.environment += plan.runEnvironment
    for entry in currentEnvironment() {
        let name = String(entry.prefix { $0 != "=" })
        if plan.runEnvironmentPrefixes.contains(where: { name.hasPrefix($0) }) { exec.environment.append(name) }
    }
    return exec
}

public func isMacro(_ word: String) -> Bool { macro(named: word) != nil }

/// The macros that may start a list of macros in place of a command's IMAGE (`plash rm
/// --from 1 --run X --`): those that name the image to start from, and those that read
/// more macros, which may name it. A list without one could build nothing, so `plash rm
/// -x 1` is rm's unknown option -x, not macros (-x is --run).
public func startsImage(_ word: String) -> Bool {
    let names = ["--from", "-f", "--image", "--from-id", "--from-map",
                 "--eval-file", "--eval-string", "--eval-stdin", "--eval-github", "--eval-url"]
        + sourceMacros.flatMap(\.names) + distributions.map(\.flag)
    return names.contains(word)
}
