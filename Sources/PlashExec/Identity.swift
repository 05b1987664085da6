#if canImport(Glibc)
import Glibc
#endif
import CPlashShims
import PlashSystem

// Who the program is: --user, and the capabilities it keeps (--cap-drop, --cap-add,
// --isolate). The order is fixed by the kernel: the bounding set can be narrowed only
// with CAP_SETPCAP and setuid needs CAP_SETUID, both of which a switch to another user
// loses; lowering the effective and permitted sets needs nothing. So: bounding set,
// user, then the other sets; the seccomp filter comes after all of them (it may
// forbid setuid, and no_new_privs lets a non-root process load it).

/// The capabilities to keep, as bits, or nil to leave them alone.
func keptCapabilities(_ plan: ExecPlan) -> UInt64? {
    guard plan.isolate || plan.dropCapabilities != 0 || plan.addCapabilities != 0 else { return nil }
    let base = plan.isolate ? packageManagerCapabilities.reduce(UInt64(0)) { $0 | (1 << UInt64($1)) } : ~UInt64(0)
    return (base & ~plan.dropCapabilities) | plan.addCapabilities
}

/// A --user resolved in the image: the ids and the supplementary groups.
public struct Identity: Equatable {
    public var uid: uid_t
    public var gid: gid_t
    public var groups: [gid_t]
    public var home: String? = nil
}

/// USER|UID[:GROUP|GID] against the image's passwd and group files (their text): a
/// name must be there; a UID need not (its GID is then the UID, as no group is known).
/// The supplementary groups are those that list the user by name, and its own group.
public func resolveUser(_ spec: String, passwd: String, group: String) throws -> Identity {
    let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
    let users = PasswdEntry.parse(passwd)
    let groups = GroupEntry.parse(group)
    let entry = users.first { $0.name == parts[0] } ?? UInt32(parts[0]).flatMap { uid in users.first { $0.uid == uid } }
    guard let uid = UInt32(parts[0]) ?? entry?.uid else {
        throw PlashError.failure("--user \(spec): no user \(parts[0]) in the image's /etc/passwd")
    }
    var gid = entry?.gid ?? uid
    if parts.count == 2 {
        guard let named = UInt32(parts[1]) ?? groups.first(where: { $0.name == parts[1] })?.gid else {
            throw PlashError.failure("--user \(spec): no group \(parts[1]) in the image's /etc/group")
        }
        gid = named
    }
    var supplementary = [gid]
    if let name = entry?.name {
        for group in groups where group.members.contains(name) && !supplementary.contains(group.gid) {
            supplementary.append(group.gid)
        }
    }
    let home = entry.flatMap { $0.home.hasPrefix("/") ? $0.home : nil }
    return Identity(uid: uid, gid: gid, groups: supplementary, home: home)
}

/// The capabilities and the user of the program, in the order above. Returns the
/// home directory of a --user found in the image's /etc/passwd.
public func becomeUser(_ plan: ExecPlan) throws -> String? {
    let kept = keptCapabilities(plan)
    var home: String? = nil
    if let kept { try check(plash_drop_bounding_capabilities(kept), "drop capabilities", "") }
    if let spec = plan.user {
        let identity = try resolveUser(spec, passwd: try imageFile("/etc/passwd"), group: try imageFile("/etc/group"))
        try switchUser(identity, spec: spec)
        home = identity.home
    }
    if let kept { try check(plash_keep_only_capabilities(kept), "drop capabilities", "") }
    return home
}

/// A file of the image (after pivot_root) as text; "" when it is missing. Only a
/// regular file is read: the image could make it a FIFO, which would block the start,
/// or a link to /dev/zero, which never ends.
func imageFile(_ path: String) throws -> String {
    var info = stat()
    if stat(path, &info) == -1 {
        if errno == ENOENT { return "" }
        throw PlashError.system("--user: read", path)
    }
    guard (info.st_mode & S_IFMT) == S_IFREG else {
        throw PlashError.failure("--user: \(path) in the image is not a regular file")
    }
    return String(decoding: try readFile(path, what: "--user: read"), as: UTF8.self)
}

func switchUser(_ identity: Identity, spec: String) throws {
    let unmapped = PlashError.failure("--user \(spec): uid \(identity.uid) or gid \(identity.gid) is not mapped in this user namespace")
        .advising("an ordinary user needs ranges in /etc/subuid and /etc/subgid: see plash doctor")
    // A user namespace that maps only the caller's own ids denies setgroups (EPERM to
    // its root); a user without supplementary groups (root inside) does not need it.
    if setgroups(identity.groups.count, identity.groups) == -1 {
        let denied = errno == EPERM && getuid() == 0
        if errno == EINVAL || denied && identity.groups != [identity.gid] { throw unmapped }
        if !denied { throw PlashError.system("setgroups", "--user \(spec)") }
    }
    if setgid(identity.gid) == -1 { throw errno == EINVAL ? unmapped : PlashError.system("setgid", "--user \(spec)") }
    if setuid(identity.uid) == -1 { throw errno == EINVAL ? unmapped : PlashError.system("setuid", "--user \(spec)") }
}
