#if canImport(Glibc)
import Glibc
#endif

/// This program's own file, as the kernel ran it.
public var ownPath: String { readLink("/proc/self/exe") ?? CommandLine.arguments[0] }

/// Another of plash's programs (plash, plash-builder, plash-exec: installed together):
/// the one beside this program's own file (so the version built with it, wherever it was
/// linked from), else the first one on PATH (one copied alone, the others installed
/// elsewhere). Nil when neither has it.
public func companionProgram(_ name: String) -> String? {
    // As execvp looks: a directory of that name passes access(X_OK) too.
    func isProgram(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
    }
    let beside = splitLast(ownPath).0 + "/" + name
    if isProgram(beside) { return beside }
    for dir in (environment("PATH") ?? "").split(separator: ":") where dir.hasPrefix("/") {
        let candidate = String(dir) + "/" + name
        if isProgram(candidate) { return candidate }
    }
    return nil
}
