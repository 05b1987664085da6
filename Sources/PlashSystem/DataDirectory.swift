#if canImport(Glibc)
import Glibc
#endif

/// The store: $PLASH_DATA, else /var/lib/plash for root and
/// $XDG_DATA_HOME/plash (~/.local/share/plash) for everybody else.
/// A relative $PLASH_DATA is taken against the working directory.
public func dataDirectory() -> String {
    if let dir = environment("PLASH_DATA"), !dir.isEmpty { return absolutePath(dir) }
    if geteuid() == 0 { return "/var/lib/plash" }
    if let xdg = environment("XDG_DATA_HOME"), xdg.hasPrefix("/") { return xdg + "/plash" }
    let home = homeDirectory()
    return (home == "/" ? "" : home) + "/.local/share/plash"
}

/// $HOME when it is an absolute path, else the home of the user's entry in /etc/passwd
/// (a supervisor or cron may start plash without HOME), else /.
public func homeDirectory() -> String {
    if let home = environment("HOME"), home.hasPrefix("/") {
        return home.count > 1 && home.hasSuffix("/") ? String(home.dropLast()) : home
    }
    let uid = geteuid()
    return PasswdEntry.host().first { $0.uid == uid && $0.home.hasPrefix("/") }?.home ?? "/"
}

public func environment(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}

/// `path` against the working directory, without `.` components, repeated or trailing
/// slashes (`./store/` in / is `/store`). `..` stays: with symlinks, `a/..` need not be
/// the directory of `a`.
public func absolutePath(_ path: String) -> String {
    let joined = path.hasPrefix("/") ? path : (currentDirectory() ?? "/") + "/" + path
    // By hand rather than joined(separator:), whose generic witness lookup scans every
    // protocol conformance of the binary at the first call (plash run's start).
    var result = ""
    for part in joined.split(separator: "/") where part != "." {
        result.append("/")
        result.append(contentsOf: part)
    }
    return result.isEmpty ? "/" : result
}
