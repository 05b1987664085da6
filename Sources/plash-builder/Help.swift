import PlashExec
import PlashKit
import PlashSystem

// The help texts, made from the command table (Commands.swift), the macro table and
// plash-exec's option table. Lines fit 80 columns, as a terminal shows them.

let helpWidth = 80

/// `plash COMMAND --help`: its usage, its line of help, and its options.
func commandHelp(_ command: Command) -> String {
    var rows = [("-h, --help", "show this help")] + command.options.map { ($0.synopsis, $0.help) }
    var text = command.usage + "\n\n" + wrapped(command.help, indent: 0).joined(separator: "\n") + "\n\nOptions:\n"
    if command.name == "run" {
        rows = [rows[0]]
        text += helpRows(rows).joined(separator: "\n") + "\n" + runOptions
    } else {
        text += helpRows(rows).joined(separator: "\n")
    }
    return text
}

/// plash-exec's options that `plash run` passes on, from plash-exec's own table.
let runOptions: String = "EXEC-OPTIONS, passed on to plash-exec (see plash-exec --help):\n"
    + optionsHelp(execOptions.filter(\.passedByRun))
    + "Then IMAGE, an id or a name, or MACRO... to build one (plash help macros)."

/// `plash help`: every command with its line of help.
let overview: String = {
    var text = "Usage: plash COMMAND [ARG...]\n       ./Plashfile [ARG...]\n\nCommands:\n"
    text += helpRows(commands.map { ($0.name, $0.help) }, gap: 2).joined(separator: "\n")
    text += "\n\nThe original plash's commands that plash replaced:\n"
    for name in replacedCommands.keys.sorted() { text += listItem(replacedCommands[name]!) + "\n" }
    text += "\nCommands of docker and podman, and plash's:\n"
    for name in otherToolsCommands.keys.sorted() { text += listItem(otherToolsCommands[name]!) + "\n" }
    text += "\nplash help macros lists the macros of build and run.\nExit status: 0, 1 failure, 2 usage."
    return text
}()

/// Every macro with its line of help, from the same table the parser uses.
func macroHelp() -> String {
    var text = "Macros (plash build, plash run, Plashfiles):\n"
    text += helpRows(macros.map { ($0.synopsis, $0.help) }).joined(separator: "\n")
    text += "\n\nThe original plash's macros that plash replaced:\n"
    for macro in replacedMacros { text += listItem(macro.hint) + "\n" }
    text += """

        A Plashfile is an executable file starting with #!/usr/bin/env plash, then
        macros and their arguments, one per line (a macro may share its line with one
        argument), # comments. ./Plashfile ARGS builds it and runs its entrypoint.
        """
    return text
}

/// Rows `  LEFT   TEXT`, the texts in one column and wrapped beneath it. A left side
/// too wide for the column gets the text on the next line, as ls --help does.
func helpRows(_ rows: [(String, String)], gap: Int = 3) -> [String] {
    let widest = rows.map(\.0.count).max() ?? 0
    // Left sides wider than this would squeeze every text; they stand alone instead.
    let column = min(2 + widest + gap, 32)
    return rows.flatMap { left, text -> [String] in
        let lines = wrapped(text, indent: column)
        let start = "  " + left
        if start.count + gap > column { return [start] + lines }
        return [start + String(lines[0].dropFirst(start.count))] + lines.dropFirst()
    }
}

/// `  TEXT` as an item of a list: wrapped, its further lines indented beneath it.
func listItem(_ text: String) -> String {
    let lines = wrapped(text, indent: 4)
    return ([String(lines[0].dropFirst(2))] + lines.dropFirst()).joined(separator: "\n")
}

/// `text` broken at spaces into lines of at most 80 columns, each indented by
/// `indent` spaces (a word longer than a line stands alone on its line).
func wrapped(_ text: String, indent: Int) -> [String] {
    let margin = String(repeating: " ", count: indent)
    var lines: [String] = []
    var line = ""
    for word in text.split(separator: " ") {
        if !line.isEmpty && indent + line.count + 1 + word.count > helpWidth {
            lines.append(margin + line)
            line = ""
        }
        line += (line.isEmpty ? "" : " ") + word
    }
    lines.append(margin + line)
    return lines
}

extension String {
    func padding(to width: Int) -> String { self + String(repeating: " ", count: max(width - count, 1)) }

    /// Without spaces at either end.
    var trimmingSpaces: String { String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }

    /// A table cell as ps(1) prints one: control characters (a newline, a tab, an escape
    /// sequence in a command line a container chose) become `?`, so a row stays one line
    /// and nothing reaches the terminal as a command.
    var printable: String {
        String(unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : Character($0) })
    }
}
