#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

/// Replace this process with the program, searching the container's PATH (not the
/// caller's) for a command without a slash. Returns only by throwing.
public func execute(_ command: [String], environment: [String]) throws -> Never {
    let name = command[0]
    var candidates = [name]
    // As execvp(3): an empty name is no file, not PATH's directories joined to it
    // (found, and refused as directories: 126 rather than 127).
    if !name.isEmpty && !name.contains("/") {
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
        case ENOEXEC:
            // As execvp(3): a file the kernel cannot run (a script without `#!`) is
            // handed to /bin/sh, the file's path its first argument.
            let script = [strdup(scriptShell), strdup(candidate)] + argv.dropFirst()
            execve(scriptShell, script, envp)
            throw PlashError.exec(name, errno: ENOEXEC)
        default: throw PlashError.exec(name, errno: errno)
        }
    }
    throw PlashError.exec(name, errno: failure)
}

/// The shell execvp(3) runs a file without `#!` with.
let scriptShell = "/bin/sh"
