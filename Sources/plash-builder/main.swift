// plash-builder: the builder and manager, what `plash` hands every command to but a run
// of a stored image (Sources/plash). Each command lives in its own file; this is the table
// of contents and the one place that prints errors and picks exit codes.
#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PlashKit
import PlashSystem

/// 1, or 125 for `plash run` and Plashfiles, which end as plash-exec does.
var failureStatus: Int32 = 1

// A relative PLASH_DATA names the store of the directory plash started in, also for
// what runs after a chdir (a Plashfile's build) and for the programs plash starts.
if let data = environment("PLASH_DATA"), !data.isEmpty, !data.hasPrefix("/") { setenv("PLASH_DATA", dataDirectory(), 1) }

do {
    try checkNumberSettings()
    try checkOverlaySetting()
    let arguments = try commandLineArguments()
    guard let name = arguments.first else { throw PlashError.usage("no command given", usage: overview) }
    var rest = Array(arguments.dropFirst())
    if let command = lookupCommand(name) {
        if rest.first == "-h" || rest.first == "--help" {
            print(commandHelp(command))
            exit(0)
        }
        failureStatus = command.failureStatus
        try showingUsage(of: command) {
            if command.buildsImageFromMacros { rest = try buildImageArgument(rest, of: command) }
            exit(try command.run(rest))
        }
    }
    switch name {
    case "-h", "--help": print(overview); exit(0)
    case "--version": exit(try version(rest))
    case _ where replacedCommands[name] != nil: throw PlashError.usage(replacedCommands[name]!)
    case _ where otherToolsCommands[name] != nil: throw PlashError.usage(otherToolsCommands[name]!)
    case _ where isMacro(name):
        // The original's `plash --from 1 -- CMD`: macros first are plash run.
        failureStatus = 125
        try showingUsage(of: lookupCommand("run")!) { exit(try runCommand(arguments)) }
    default:
        // `#!/usr/bin/env plash` runs `plash ./Plashfile ARGS`; a path is no command.
        if name.contains("/") {
            try checkPlashfile(name)
            failureStatus = 125
            exit(try runPlashfile(name, rest))
        }
        if name.hasPrefix("-") { throw PlashError.usage("unknown option \(name)", usage: overview) }
        // Word for word the original's line: scripts written for it match on it.
        printLine(toStandardError: "plash error: no such command: \(name) (try `plash help`)")
        exit(2)
    }
} catch {
    let error = plashError(error)
    if error.step == .hostCommand && error.execStatus == 127 {
        // As a shell says it, and as the original did.
        printLine(toStandardError: "\(oneLine(error.path)): command not found")
        exit(127)
    }
    printLine(toStandardError: "plash: \(error)")
    if !error.usage.isEmpty { printLine(toStandardError: error.usage) }
    exit(error.kind == .usage ? 2 : error.kind == .command ? error.execStatus : failureStatus)
}

/// Runs `body`, a command's work; a usage error of its macros shows the usage of the
/// command typed: the macro parser knows no command and names plash build's.
func showingUsage(of command: Command, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch var error as PlashError where error.kind == .usage && error.usage == buildUsage {
        error.usage = command.usage
        throw error
    }
}

/// Any error as one line: Foundation's file errors name their path and errno.
func plashError(_ error: Error) -> PlashError {
    if let error = error as? PlashError { return error }
    if let error = error as? CocoaError, let posix = error.underlying as? POSIXError {
        return PlashError.system("file", error.filePath ?? "", errno: posix.code.rawValue)
    }
    return PlashError.failure("\(error)")
}
