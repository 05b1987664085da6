// plash-exec: set up a container around this process, then become its program.
// The steps, in the order they happen, are in PlashExec/Container.swift.
#if canImport(Glibc)
import Glibc
#endif
import PlashExec
import PlashSystem

do {
    try checkOverlaySetting()
    let arguments = try commandLineArguments()
    try handOverPlashfile(arguments)
    switch try parse(arguments) {
    case .help: print(usage)
    case .version: print("plash-exec \(plashVersionLine)")
    case .run(let plan): runContainer(plan, program: "plash-exec")
    }
    exit(0)
} catch {
    printLine(toStandardError: "plash-exec: \(error)")
    exit(125)
}
