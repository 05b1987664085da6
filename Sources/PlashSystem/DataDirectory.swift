#if canImport(Glibc)
import Glibc
#endif

/// The store: $PLASH_DATA, else /var/lib/plash for root and
/// $XDG_DATA_HOME/plash (~/.local/share/plash) for everybody else.
public func dataDirectory() -> String {
    if let dir = environment("PLASH_DATA"), !dir.isEmpty {
        return dir.count > 1 && dir.hasSuffix("/") ? String(dir.dropLast()) : dir
    }
    if geteuid() == 0 { return "/var/lib/plash" }
    if let xdg = environment("XDG_DATA_HOME"), xdg.hasPrefix("/") { return xdg + "/plash" }
    return (environment("HOME") ?? "/") + "/.local/share/plash"
}

public func environment(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}
