import CPlashShims

/// plash's version, for both binaries, the package and `plash doctor`.
public let plashVersion = "0.1.0"

/// The version and, when the build recorded it (scripts/stamp-commit), the commit:
/// `0.1.0 (commit 7cdad3f)`.
public var plashVersionLine: String {
    guard let commit = plash_commit() else { return plashVersion + " (built without a commit)" }
    return plashVersion + " (commit " + String(cString: commit) + ")"
}
