#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

/// Start in --cwd, else in the image's WorkingDir, else in the caller's working
/// directory when the container has it, else in /.
public func enterWorkingDirectory(_ plan: ExecPlan, image: RunConfig?, callerDirectory: String?) throws {
    if let dir = plan.workingDirectory {
        try check(chdir(dir), "chdir", dir)
    } else if let dir = image?.workingDirectory, !dir.isEmpty {
        try enterImageDirectory(dir)
    } else if let dir = callerDirectory, chdir(dir) == 0 {
        return
    } else {
        try check(chdir("/"), "chdir", "/")
    }
}

public let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/// The program's environment: nothing of the caller's but TERM, HOME and DISPLAY (as
/// the original plash passed: X clients work, /tmp/.X11-unix is shared) and what a
/// service manager gives its program (ServiceManager.swift), plus what PLASH_EXPORT
/// (NAME:NAME...) and --env name; the image's Env comes before those two, so they win
/// over it, and over the defaults. Later entries win.
public func containerEnvironment(_ plan: ExecPlan, image: [String]? = nil, caller: (String) -> String?) -> [String] {
    var entries: [(String, String)] = [("PATH", defaultPath)]
    for name in ["TERM", "HOME", "DISPLAY"] + serviceManagerVariables {
        if let value = caller(name) { entries.append((name, value)) }
    }
    for assignment in image ?? [] {
        if let equals = assignment.firstIndex(of: "=") {
            entries.append((String(assignment[..<equals]), String(assignment[assignment.index(after: equals)...])))
        }
    }
    for name in caller("PLASH_EXPORT")?.split(separator: ":").map(String.init) ?? [] {
        if let value = caller(name) { entries.append((name, value)) }
    }
    for assignment in plan.environment {
        if let equals = assignment.firstIndex(of: "=") {
            entries.append((String(assignment[..<equals]), String(assignment[assignment.index(after: equals)...])))
        } else if let value = caller(assignment) {
            entries.append((assignment, value))
        }
    }
    // A list searched rather than a dictionary: a few dozen names, and a dictionary's
    // first use scans every protocol conformance of the binary (String: Hashable).
    var result: [String] = []
    var names: [String] = []
    for (name, value) in entries {
        if let index = names.firstIndex(of: name) {
            result[index] = "\(name)=\(value)"
        } else {
            names.append(name)
            result.append("\(name)=\(value)")
        }
    }
    return result
}
