#if canImport(Glibc)
import Glibc
#endif
import CPlashShims

public func unshare(_ flags: Int32) throws {
    try check(plash_unshare(flags), "unshare", "")
}

/// Inside a fresh user namespace, map our own uid and gid to root. setgroups must be
/// denied before an unprivileged process may write gid_map (user_namespaces(7)).
public func mapSelfToRoot(uid: uid_t, gid: gid_t) throws {
    try writeFile("/proc/self/setgroups", "deny")
    try writeFile("/proc/self/uid_map", "0 \(uid) 1\n")
    try writeFile("/proc/self/gid_map", "0 \(gid) 1\n")
}

public func setHostname(_ name: String) throws {
    try check(sethostname(name, name.utf8.count), "sethostname", name)
}

public func bringLoopbackUp() throws {
    try check(plash_loopback_up(), "bring up", "lo")
}

public func setNoNewPrivileges() throws {
    try check(plash_set_no_new_privs(), "prctl no_new_privs", "")
}
