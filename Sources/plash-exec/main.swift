// plash-exec: set up a container around this process, then become its program.
// The steps, in the order they happen, are in PlashExec/Container.swift.
#if canImport(Glibc)
import Glibc
#endif
import PlashExec
import PlashSystem

do {
    try handOverPlashfile(Array(CommandLine.arguments.dropFirst()))
    switch try parse(Array(CommandLine.arguments.dropFirst())) {
    case .help: print(usage)
    case .version: print("plash-exec \(plashVersionLine)")
    case .run(let plan): runContainer(plan, program: "plash-exec")
    }
    exit(0)
} catch {
    printLine(toStandardError: "plash-exec: \(error)")
    exit(125)
}
