#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

/// Why exec failed, with the shell's exit codes: 127 not found, 126 not executable.
public struct ExecError: Error, CustomStringConvertible {
    public let command: String
    public let errno: Int32
    public var status: Int32 { errno == ENOENT || errno == ENOTDIR ? 127 : 126 }
    public var description: String { "exec \(command): \(String(cString: strerror(errno)))" }
}

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
        default: throw ExecError(command: name, errno: errno)
        }
    }
    throw ExecError(command: name, errno: failure)
}
