#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

/// Replace this process with the program, searching the container's PATH (not the
/// caller's) for a command without a slash. Returns only by throwing.
public func execute(_ command: [String], environment: [String]) throws -> Never {
    let name = command[0]
    var candidates = [name]
    if !name.contains("/") {
        let path = environment.first { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } ?? defaultPath
        candidates = path.split(separator: ":", omittingEmptySubsequences: false)
            .map { ($0.isEmpty ? "." : String($0)) + "/" + name }
    }

    let argv = command.map { strdup($0) } + [nil]
    let envp = environment.map { strdup($0) } + [nil]
    // As execvp(3): keep looking after ENOENT, remember EACCES, stop at anything else.
    var failure = ENOENT
    for candidate in candidates {
        execve(candidate, argv, envp)
        switch errno {
        case ENOENT, ENOTDIR: continue
        case EACCES: failure = EACCES
        default: throw PlashError.exec(name, errno: errno)
        }
    }
    throw PlashError.exec(name, errno: failure)
}
