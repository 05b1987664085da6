#if canImport(Glibc)
import Glibc
#endif
import CPlashShims

public func unshare(_ flags: Int32) throws {
    try check(plash_unshare(flags), "unshare", "")
}

/// Root that may mount: uid 0 holding CAP_SYS_ADMIN. Root without it (`bwrap
/// --unshare-user --uid 0`, `docker run` as root, a plash container of --isolate)
/// takes an ordinary user's way, a user namespace.
public func mountsAsRoot() -> Bool {
    geteuid() == 0 && plash_has_effective_capability(21) == 1   // CAP_SYS_ADMIN
}

/// A switch that keeps ordinary users from making user namespaces: what it is set to,
/// and how root turns it on. `plash doctor` lists them; a refused unshare names the first.
public struct UserNamespaceSwitch: Sendable {
    public var detail: String
    public var fix: String
}

public func userNamespaceSwitchesOff() -> [UserNamespaceSwitch] {
    func sysctl(_ name: String) -> String? {
        (try? readFile("/proc/sys/" + name.split(separator: ".").joined(separator: "/"), what: "read"))
            .map { String(decoding: $0, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? "" }
    }
    var off: [UserNamespaceSwitch] = []
    if sysctl("kernel.unprivileged_userns_clone") == "0" {
        off.append(UserNamespaceSwitch(detail: "kernel.unprivileged_userns_clone is 0",
                                       fix: "as root: sysctl -w kernel.unprivileged_userns_clone=1, and the same in /etc/sysctl.d/plash.conf"))
    }
    if sysctl("user.max_user_namespaces") == "0" {
        off.append(UserNamespaceSwitch(detail: "user.max_user_namespaces is 0",
                                       fix: "as root: sysctl -w user.max_user_namespaces=15000, and the same in /etc/sysctl.d/plash.conf"))
    }
    if sysctl("kernel.apparmor_restrict_unprivileged_userns") == "1" {
        off.append(UserNamespaceSwitch(detail: "AppArmor restricts them (Ubuntu 24.04 and later)",
                                       fix: "as root: an AppArmor profile for plash and plash-exec with `userns,` (docs/unprivileged.md), or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"))
    }
    return off
}

/// Whether a seccomp filter confines this process (plash-exec --isolate or --seccomp,
/// docker's and podman's default profiles): such filters refuse new namespaces with
/// EPERM, which says nothing of the filter.
public func underSeccompFilter() -> Bool {
    guard let status = try? readFile("/proc/self/status", what: "read") else { return false }
    return String(decoding: status, as: UTF8.self).split(separator: "\n").contains("Seccomp:\t2")
}

/// Why a new user namespace (or, for root that may mount, a mount namespace) was
/// refused here, with the fix: the advice of the unshare error.
func unshareRefusal(_ errno: Int32) -> String {
    if let off = userNamespaceSwitchesOff().first, !mountsAsRoot() {
        return "user namespaces disabled: \(off.detail); \(off.fix)"
    }
    if underSeccompFilter() {
        return "a seccomp filter refuses new namespaces here, as plash --isolate and docker's default profile do: run plash outside it, "
            + "or that container without the filter: plash run without --isolate, docker run --security-opt seccomp=unconfined"
    }
    if errno == ENOSPC { return "too many user namespaces: see sysctl user.max_user_namespaces" }
    return "user namespaces disabled? see sysctl kernel.unprivileged_userns_clone and user.max_user_namespaces"
}

/// Whether this process lives in the machine's first user namespace, the only one that
/// maps every id to itself. Root elsewhere (`bwrap --unshare-user --uid 0 --cap-add
/// CAP_SYS_ADMIN`, a rootless container) may mount in its own mount namespace, but
/// overlayfs there keeps its metadata in user.* xattrs, as for an ordinary user.
public func inFirstUserNamespace() -> Bool {
    guard let map = try? readFile("/proc/self/uid_map", what: "read") else { return false }
    return String(decoding: map, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" }) == ["0", "0", "4294967295"]
}

/// Enter a new user namespace (with the other namespaces in `flags`) as its root.
/// With subordinate ids for this user in /etc/subuid and /etc/subgid and Debian's
/// uidmap installed, the user maps to 0 and the subordinate range to 1...N, so
/// package managers can chown and setuid; otherwise only the user maps to 0.
public func enterUserNamespace(_ flags: Int32, uid: uid_t, gid: gid_t) throws {
    var written: Int32 = 0
    if let helpers = idMapHelpers(uid: uid, gid: gid) {
        let uidArgv: [UnsafeMutablePointer<CChar>?] = helpers.uid.map { strdup($0) } + [nil]
        let gidArgv: [UnsafeMutablePointer<CChar>?] = helpers.gid.map { strdup($0) } + [nil]
        defer { (uidArgv + gidArgv).forEach { free($0) } }
        try check(plash_unshare_with_id_maps(flags, uidArgv, gidArgv, &written), "unshare", "")
    } else {
        try unshare(flags)
    }
    // What the helpers did not map, map ourselves: our own ids only. setgroups must be
    // denied before an unprivileged process may write gid_map (user_namespaces(7)).
    if written & 1 == 0 {
        do {
            try writeFile("/proc/self/uid_map", "0 \(uid) 1\n")
        } catch let error as PlashError where error.errno == EPERM {
            // A sandbox that left this process no capabilities to grant (bwrap --uid 0
            // empties the bounding set) lets it make a user namespace but map nothing.
            throw error.advising("this sandbox lets no new user namespace map ids; run plash as its own user, or outside it")
        }
    }
    if written & 2 == 0 {
        try writeFile("/proc/self/setgroups", "deny")
        try writeFile("/proc/self/gid_map", "0 \(gid) 1\n")
    }
}

/// newuidmap and newgidmap command lines for this process, when both programs and
/// both subordinate ranges exist.
func idMapHelpers(uid: uid_t, gid: gid_t) -> (uid: [String], gid: [String])? {
    let ranges = subordinateRanges(uid: uid, gid: gid)
    guard let newuidmap = idMapHelper("newuidmap"), let newgidmap = idMapHelper("newgidmap"),
          let uids = ranges.uids, let gids = ranges.gids else { return nil }
    let pid = String(getpid())
    let uidMap: [String] = [newuidmap, pid, "0", String(uid), "1", "1", String(uids.start), String(uids.count)]
    let gidMap: [String] = [newgidmap, pid, "0", String(gid), "1", "1", String(gids.start), String(gids.count)]
    return (uidMap, gidMap)
}

/// Debian's uidmap programs, newuidmap and newgidmap, where plash-exec runs them from.
public func idMapHelper(_ name: String) -> String? {
    ["/usr/bin/", "/bin/"].map { $0 + name }.first { access($0, X_OK) == 0 }
}

/// The user's ranges of subordinate ids that plash-exec maps: the first line of
/// /etc/subuid for the user's name or uid, and of /etc/subgid for the name or gid.
public func subordinateRanges(uid: uid_t, gid: gid_t)
    -> (uids: (start: UInt32, count: UInt32)?, gids: (start: UInt32, count: UInt32)?) {
    let name = userName(uid)
    return (subordinateRange("/etc/subuid", name: name, id: uid), subordinateRange("/etc/subgid", name: name, id: gid))
}

/// The first range of /etc/subuid or /etc/subgid for a user: lines `NAME:START:COUNT`
/// or `ID:START:COUNT`.
func subordinateRange(_ file: String, name: String?, id: UInt32) -> (start: UInt32, count: UInt32)? {
    guard let contents = try? readFile(file, what: "read") else { return nil }
    for line in String(decoding: contents, as: UTF8.self).split(separator: "\n") {
        let fields = line.split(separator: ":", omittingEmptySubsequences: false)
        let owner = String(fields[0])
        guard fields.count == 3, owner == name || owner == String(id), let start = UInt32(fields[1]), let count = UInt32(fields[2]), count > 0 else { continue }
        return (start, count)
    }
    return nil
}

/// The login name of `uid`, from the host's /etc/passwd.
public func userName(_ uid: uid_t) -> String? {
    PasswdEntry.host().first { $0.uid == uid }?.name
}

public func setHostname(_ name: String) throws {
    try check(sethostname(name, name.utf8.count), "sethostname", name)
}

public func bringLoopbackUp() throws {
    try check(plash_loopback_up(), "bring up", "lo")
}

/// SIGKILL for this process (and the program it becomes) when its parent dies. A
/// parent that died before the request cannot send it: then die now.
public func dieWithParent() throws {
    let parent = getppid()
    try check(plash_die_with_parent(), "prctl pdeathsig", "")
    if getppid() != parent { exit(125) }
}

public func setNoNewPrivileges() throws {
    try check(plash_set_no_new_privs(), "prctl no_new_privs", "")
}
