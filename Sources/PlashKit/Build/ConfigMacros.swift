#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PlashExec
import PlashSystem

/// One config macro in a layer: its name and its arguments as checked (`--config-expose
/// 80` is kept as `80/tcp`). They are part of the layer's cache key and of its script.
public struct ConfigChange: Equatable, Sendable {
    public var macro: String
    public var values: [String]

    /// The macro as a line of the layer's script (`plash ls`, an export's history).
    var macroLine: String { ([macro] + values.map(shellQuote)).joined(separator: " ") }
}

/// The macros that set the image's config for `plash run`, plash-exec and exports, as a
/// Dockerfile's ENV, WORKDIR, USER, ENTRYPOINT, CMD, LABEL, EXPOSE, VOLUME and
/// STOPSIGNAL do: each checks its arguments and changes the config the layer inherits.
/// A build step sees the config of the layers below its own, as a RUN sees the lines above.
let configMacroTable: [(name: String, arguments: Macro.Arguments, help: String,
                        check: @Sendable ([String]) throws -> [String],
                        apply: @Sendable (inout ImageConfig.Settings, [String]) -> Void)] = [
    ("--config-env", .oneOrMore("NAME=VALUE"), "set NAME in the image's environment ($NAME and ${NAME} in VALUE: its value so far)",
     { try $0.map { try checkAssignment($0, "--config-env") } },
     { settings, values in
         for assignment in values {
             let name = String(assignment.prefix { $0 != "=" })
             let value = expandVariables(String(assignment.dropFirst(name.count + 1)), settings.Env ?? [])
             var env = (settings.Env ?? []).filter { !$0.hasPrefix(name + "=") && $0 != name }
             env.append(name + "=" + value)
             settings.Env = env
         }
     }),
    ("--config-workdir", .one("DIR"), "the directory the image's program starts in",
     { guard $0[0].hasPrefix("/") else { throw configUsage("--config-workdir \($0[0]): must be an absolute path") }; return $0 },
     { $0.WorkingDir = $1[0] }),
    ("--config-user", .one("USER[:GROUP]"), "the user the image's program runs as (a name or UID of the image's)",
     { guard !$0[0].isEmpty, !$0[0].hasPrefix(":"), !$0[0].hasSuffix(":") else {
         throw configUsage("--config-user \($0[0]): expected USER, UID, USER:GROUP or UID:GID") }; return $0 },
     { $0.User = $1[0] }),
    ("--config-entrypoint", .oneOrMore("CMD [ARG...]"),
     "the image's entrypoint (also '[\"CMD\", \"ARG\"]'; '' or '[]': none); it drops the image's Cmd",
     { try commandWords($0, "--config-entrypoint") },
     { $0.Entrypoint = $1.isEmpty ? nil : $1; $0.Cmd = nil }),
    ("--config-cmd", .oneOrMore("CMD [ARG...]"), "the image's command, or the entrypoint's arguments (also a JSON array; '': none)",
     { try commandWords($0, "--config-cmd") },
     { $0.Cmd = $1.isEmpty ? nil : $1 }),
    ("--config-label", .oneOrMore("NAME=VALUE"), "label the image",
     { try $0.map { try checkAssignment($0, "--config-label") } },
     { settings, values in
         for label in values {
             let name = String(label.prefix { $0 != "=" })
             settings.Labels = (settings.Labels ?? [:]).merging([name: String(label.dropFirst(name.count + 1))]) { $1 }
         }
     }),
    ("--config-expose", .oneOrMore("PORT[/PROTO]"), "ports the image's program listens on (tcp unless /udp or /sctp)",
     { try $0.map { port in
         let parts = port.split(separator: "/", omittingEmptySubsequences: false)
         guard let number = Int(parts[0]), (1...65535).contains(number), parts.count <= 2,
               parts.count == 1 || ["tcp", "udp", "sctp"].contains(parts[1]) else {
             throw configUsage("--config-expose \(port): expected PORT or PORT/tcp, /udp, /sctp")
         }
         return parts.count == 1 ? port + "/tcp" : port } },
     { settings, ports in for port in ports { settings.ExposedPorts = (settings.ExposedPorts ?? [:]).merging([port: .init()]) { $1 } } }),
    ("--config-volume", .oneOrMore("DIR"), "directories the image's data lives in (for engines that make volumes)",
     { try $0.map { guard $0.hasPrefix("/") else { throw configUsage("--config-volume \($0): must be an absolute path") }; return $0 } },
     { settings, dirs in for dir in dirs { settings.Volumes = (settings.Volumes ?? [:]).merging([dir: .init()]) { $1 } } }),
    ("--config-stop-signal", .one("SIGNAL"), "the signal that stops the image's program (TERM, SIGQUIT, 3)",
     { guard signalNumber($0[0]) != nil, !$0[0].hasPrefix("-") else {
         throw configUsage("--config-stop-signal \($0[0]): not a signal (TERM, SIGQUIT, 3)") }; return $0 },
     { $0.StopSignal = $1[0].allSatisfy(\.isASCIIDigit) || $1[0].hasPrefix("SIG") ? $1[0] : "SIG" + $1[0] }),
]

let configMacros: [Macro] = configMacroTable.map { entry in
    Macro(names: [entry.name], arguments: entry.arguments, help: entry.help, splitsLine: entry.arguments.isList) { parser, args in
        parser.plan.current.config.append(ConfigChange(macro: entry.name, values: try entry.check(args)))
    }
}

extension Macro.Arguments {
    var isList: Bool { if case .oneOrMore = self { return true } else { return false } }
}

/// The config of a layer built on one with `parent`: the parent's settings changed by
/// the layer's config macros; history and time are the export's to tell (imageHistory).
func applying(_ changes: [ConfigChange], to parent: ImageConfig) -> ImageConfig {
    var settings = parent.config ?? ImageConfig.Settings()
    for change in changes {
        configMacroTable.first { $0.name == change.macro }?.apply(&settings, change.values)
    }
    return ImageConfig(author: parent.author, config: settings.nonEmpty)
}

func configUsage(_ message: String) -> PlashError { PlashError.usage(message, usage: buildUsage) }

/// NAME=VALUE with a NAME: what --config-env and --config-label take.
func checkAssignment(_ text: String, _ macro: String) throws -> String {
    guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
        throw configUsage("\(macro) \(text): expected NAME=VALUE")
    }
    return text
}

/// The words of a command: as given, or a JSON array of strings as docker's exec form
/// (`["sh", "-c", "x"]`, where a word starting with '-' needs no escape); '' or [] for none.
func commandWords(_ args: [String], _ macro: String) throws -> [String] {
    if args == [""] { return [] }
    guard args[0].hasPrefix("[") else { return args }
    // A Plashfile's line comes split at blanks: the array is its words joined again.
    let text = args.joined(separator: " ")
    guard let words = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
        throw configUsage("\(macro) \(text): not a JSON array of strings")
    }
    return words
}

/// $NAME and ${NAME} in `text` replaced by their values in `env` (empty when unset), as
/// a Dockerfile's ENV does: `PATH=/opt/app/bin:$PATH` adds to the image's PATH.
/// `\$` is a dollar sign. An image that sets no PATH runs with plash's: $PATH is that.
func expandVariables(_ text: String, _ env: [String]) -> String {
    func value(_ name: String) -> String {
        env.last { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) } ?? (name == "PATH" ? defaultPath : "")
    }
    var result = ""
    var rest = Substring(text)
    while let first = rest.first {
        rest = rest.dropFirst()
        if first == "\\", rest.first == "$" {
            result.append("$")
            rest = rest.dropFirst()
        } else if first == "$", rest.first == "{", let close = rest.firstIndex(of: "}") {
            result += value(String(rest[rest.index(after: rest.startIndex)..<close]))
            rest = rest[rest.index(after: close)...]
        } else if first == "$", let next = rest.first, next == "_" || (next.isASCII && next.isLetter) {
            let name = rest.prefix { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
            result += value(String(name))
            rest = rest.dropFirst(name.count)
        } else {
            result.append(first)
        }
    }
    return result
}
