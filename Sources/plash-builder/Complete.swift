import PlashExec
import PlashKit
import PlashSystem

// Shell completion. The shells' scripts (completions/, written by `plash complete
// script SHELL`) hold no list of their own: for every Tab they ask `plash complete line`
// what may follow, and the answer comes from the tables the commands run on: the
// command table, the macro table, plash-exec's option table and the store.

/// The word lists of `plash complete`.
let completeTopics = ["commands", "macros", "images", "options", "line", "script"]

@Sendable func complete(_ arguments: [String]) throws -> Int32 {
    // A command line's words may start with '-': none of them is complete's own option.
    if arguments.first == "line" {
        guard arguments.count >= 2 else { throw PlashError.usage("complete line: give the words", usage: lookupCommand("complete")!.usage) }
        print(completion(Array(arguments.dropFirst())).lines.joined(separator: "\n"))
        return 0
    }
    let arguments = try expect(arguments, "complete")
    switch arguments[0] {
    case "commands":
        commands.forEach { print($0.name) }
    case "macros":
        macros.flatMap(\.names).forEach { print($0) }
    case "images":
        imageWords().forEach { print($0) }
    case "options":
        guard arguments.count == 2, let command = lookupCommand(arguments[1]) else {
            throw PlashError.usage("complete options: name a command", usage: lookupCommand("complete")!.usage)
        }
        optionWords(command).forEach { print($0) }
    case "script":
        guard arguments.count == 2, let script = completionScripts[arguments[1]] else {
            throw PlashError.usage("complete script: name a shell: bash, zsh or fish", usage: lookupCommand("complete")!.usage)
        }
        print(script, terminator: "")
    default:
        throw PlashError.usage("complete: unknown word list \(arguments[0])", usage: lookupCommand("complete")!.usage)
    }
    return 0
}

/// What a shell offers for the last word of a command line: these words, and host
/// files or directories too.
struct Candidates: Equatable {
    enum Paths { case none, files, directories }
    var words: [String] = []
    var paths: Paths = .none

    static let files = Candidates(paths: .files)
    static let directories = Candidates(paths: .directories)
    static func words(_ words: [String]) -> Candidates { Candidates(words: words) }

    /// As `plash complete line` prints them: the kind of paths, then a word a line.
    var lines: [String] { ["\(paths)"] + words }
}

/// The candidates for the last word of `line` (the program, its arguments so far, the
/// word being completed, maybe empty).
func completion(_ line: [String]) -> Candidates {
    let words = Array(line.dropFirst().dropLast())
    if line[0].hasSuffix("plash-exec") { return execCompletion(words, current: line.last!) }
    guard let name = words.first else { return .words(commands.map(\.name) + ["--help", "--version"]) }
    if let command = lookupCommand(name) { return commandCompletion(command, Array(words.dropFirst()), current: line.last!) }
    // `plash --from 1 -- CMD` is plash run; `plash ./Plashfile ARGS` takes the Plashfile's.
    if macros.contains(where: { $0.names.contains(name) }) { return commandCompletion(lookupCommand("run")!, words, current: line.last!) }
    return .files
}

/// plash-exec [OPTION...] IMAGE [--] [CMD...].
func execCompletion(_ words: [String], current: String) -> Candidates {
    var pending: String?      // the placeholder of an option's value to come
    var imageGiven = false    // --root or --lower name it: the next word is CMD
    for word in words {
        if pending != nil { pending = nil; continue }
        if word == "--" || !word.hasPrefix("-") || word == "-" { return .files }
        let name = String(word.prefix { $0 != "=" })
        guard let option = execOption(name) else { continue }
        if name == "--root" || name == "--lower" { imageGiven = true }
        if option.takesValue && !word.contains("=") { pending = option.value }
    }
    if let pending { return valueCandidates(pending) }
    if current.hasPrefix("-") { return .words(execOptions.map(\.name) + ["--help", "--version"]) }
    return imageGiven ? .files : .words(imageWords())
}

/// plash COMMAND ARGS: its options before its operands, then each operand by its kind;
/// for run, build and the commands whose IMAGE may be macros, the macros and their values.
func commandCompletion(_ command: Command, _ words: [String], current: String) -> Candidates {
    let isRun = command.name == "run"
    let takesMacros = command.operands.first?.kind == .macros || isRun || command.buildsImageFromMacros
    var pending: String?
    var macro: Macro?         // the macro whose arguments these words are
    var macroWords = 0
    var operands = 0
    for word in words {
        if pending != nil { pending = nil; continue }
        if operands > 0 && kindOfOperand(command, operands) == .command { operands += 1; continue }
        if word == "--" {
            // After macros (and in run, after its IMAGE), `--` ends them: what follows is
            // the operand after IMAGE, CMD or a DIR.
            if macro != nil || isRun { macro = nil; operands = max(operands, 1) }
            if kindOfOperand(command, operands) == .command { return .files }
            continue
        }
        if word.hasPrefix("-") && word != "-" {
            let name = String(word.prefix { $0 != "=" })
            if isRun && macro == nil, let option = execOption(name), option.passedByRun {
                if option.takesValue && !word.contains("=") { pending = option.value }
            } else if let option = command.option(word) {
                pending = option.value
            } else if takesMacros, let found = macros.first(where: { $0.names.contains(word) }) {
                macro = found
                macroWords = 0
            }
            continue
        }
        if macro != nil { macroWords += 1; continue }
        operands += 1
    }
    if let pending { return valueCandidates(pending) }
    if let macro, !current.hasPrefix("-") {
        switch macro.arguments {
        case .none: break
        case .one(let what):
            // Its one word given, a macro or `--` comes next.
            return macroWords == 0 ? macroValueCandidates(what) : .words([])
        case .oneOrMore(let what):
            if macroWords == 0 { return macroValueCandidates(what) }
            return .files
        case .some: return .files
        }
    }
    let kind = kindOfOperand(command, operands)
    if kind == .command && !(operands == 0 && current.hasPrefix("-")) { return .files }
    if current.hasPrefix("-") {
        var offered = optionWords(command)
        if takesMacros && operands == 0 { offered += macros.flatMap(\.names) }
        return .words(offered)
    }
    if macro != nil { return .words([]) }
    switch kind {
    case .image: return .words(imageWords())
    case .file: return .files
    case .directory: return .directories
    case .words(let words): return .words(words)
    case .topic: return .words(["macros"] + commands.map(\.name))
    case .macros: return .words(macros.flatMap(\.names))
    case .text, nil: return .words([])
    case .command: return .files
    }
}

/// The kind of the operand at `index`; the last one repeats when it takes many.
func kindOfOperand(_ command: Command, _ index: Int) -> Operand.Kind? {
    if index < command.operands.count { return command.operands[index].kind }
    guard let last = command.operands.last, last.count == .many || last.count == .rest else { return nil }
    return last.kind
}

/// A value by the name of its placeholder: IMAGE, a DIR, a FILE or PATH, plash-exec's
/// `--net none`.
func valueCandidates(_ placeholder: String) -> Candidates {
    if placeholder.contains("IMAGE") { return .words(imageWords()) }
    if placeholder == "DIR" || placeholder == "CHANGESDIR" { return .directories }
    if ["FILE", "PATH", "SRC", "DIR", "PROFILE"].contains(where: placeholder.contains) { return .files }
    if placeholder == "none" { return .words(["none"]) }
    return .words([])
}

/// A macro's first argument: --from's IMAGE may also be a built-in image.
func macroValueCandidates(_ placeholder: String) -> Candidates {
    if placeholder == "IMAGE" { return .words(imageWords() + builtinImages) }
    if placeholder == "ID" { return .words(Store().images().map { "\($0.id)" }) }
    return valueCandidates(placeholder)
}

/// The ids and names of the store's images; none without a store.
func imageWords() -> [String] {
    let store = Store()
    guard store.exists else { return [] }
    return store.images().map { "\($0.id)" } + store.names().map(\.name)
}

/// The options a command's --help lists, each spelling, and --help.
func optionWords(_ command: Command) -> [String] {
    let names = command.name == "run" ? execOptions.filter(\.passedByRun).map(\.name) : command.options.flatMap(\.names)
    return names + ["--help"]
}

/// The completion of each shell, as installed (completions/ holds this output, and a
/// test compares them). Each asks `plash complete line` for every word, so they follow
/// the installed plash; plash-exec's asks the plash beside it.
let completionScripts: [String: String] = [
    "bash": #"""
        # bash completion for plash and plash-exec, written by `plash complete script bash`.
        # Each Tab asks `plash complete line WORDS` for the candidates: its first line says
        # whether host paths go with them (none, files, directories), the rest are words.

        _plash() {
            local IFS=$'\n' cur words cword
            local -a reply
            # bash splits --bind SRC:DST and NAME:TAG at ':' and '='; bash-completion joins them again.
            if declare -F _get_comp_words_by_ref >/dev/null; then
                _get_comp_words_by_ref -n =: -c cur -w words -i cword
            else
                cur=${COMP_WORDS[COMP_CWORD]} cword=$COMP_CWORD words=("${COMP_WORDS[@]}")
            fi
            reply=($("${words[0]%-exec}" complete line "${words[@]:0:cword+1}" 2>/dev/null)) || return 0
            COMPREPLY=($(compgen -W "${reply[*]:1}" -- "$cur"))
            case ${reply[0]} in
                files) compopt -o filenames 2>/dev/null; COMPREPLY+=($(compgen -f -- "$cur")) ;;
                directories) compopt -o filenames 2>/dev/null; COMPREPLY+=($(compgen -d -- "$cur")) ;;
            esac
            # What bash puts in place is the part after the last ':'.
            if declare -F __ltrim_colon_completions >/dev/null; then __ltrim_colon_completions "$cur"; fi
            return 0
        }
        complete -F _plash plash plash-exec

        """#,
    "zsh": #"""
        #compdef plash plash-exec
        # zsh completion for plash and plash-exec, written by `plash complete script zsh`.
        # Each Tab asks `plash complete line WORDS` for the candidates: its first line says
        # whether host paths go with them (none, files, directories), the rest are words.

        _plash() {
            local -a reply list
            reply=("${(@f)$(${words[1]%-exec} complete line "${(@)words[1,CURRENT]}" 2>/dev/null)}")
            list=("${(@)reply[2,-1]}")
            (( $#list )) && compadd -a list
            case $reply[1] in
                files) _files ;;
                directories) _files -/ ;;
            esac
        }

        _plash "$@"

        """#,
    "fish": #"""
        # fish completion for plash and plash-exec, written by `plash complete script fish`.
        # Each Tab asks `plash complete line WORDS` for the candidates: its first line says
        # whether host paths go with them (none, files, directories), the rest are words.

        function __plash_complete
            set -l current (commandline -ct)
            set -l line (commandline -opc) "$current"
            set -l plash (string replace -r -- '-exec$' '' $line[1])
            set -l reply ($plash complete line $line 2>/dev/null); or return
            set -l paths $reply[1]
            set -e reply[1]
            test (count $reply) -gt 0; and printf '%s\n' $reply
            switch "$paths"
                case files
                    __fish_complete_path "$current"
                case directories
                    __fish_complete_directories "$current" ''
            end
        end

        complete -c plash -f -a '(__plash_complete)'
        complete -c plash-exec -f -a '(__plash_complete)'

        """#,
]
