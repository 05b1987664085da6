#if canImport(Glibc)
import Glibc
#endif
import CPlashShims
import PlashSystem

/// Leave the host's mount namespace (and its UTS and network namespaces, when asked).
/// An ordinary user first gets a user namespace in which they are root, which is what
/// allows the rest without privileges.
/// --pid-ns: from here on this function returns in the program's process, PID 1's
/// child in the new PID namespace; the caller's process and the init between them
/// pass signals on and exit as the program does (CPlashShims.h).
/// `oomLine` is said when the program dies of the memory limit, whose kills `oomCounter`
/// counts (Cgroup.oomCounter).
public func splitForPIDNamespace(_ plan: ExecPlan, oomCounter: String? = nil, oomLine: String? = nil) throws {
    guard plan.pidNamespace else { return }
    try check(plash_split_for_pid_namespace(oomCounter, oomLine), "start the init of the PID namespace", "")
}

public func enterNamespaces(_ plan: ExecPlan, asRoot: Bool) throws {
    let uid = geteuid(), gid = getegid()
    let unprivileged = !asRoot
    var flags = CLONE_NEWNS
    if unprivileged { flags |= CLONE_NEWUSER }
    if plan.hostname != nil { flags |= CLONE_NEWUTS }
    if plan.isolateNetwork { flags |= CLONE_NEWNET }
    if plan.pidNamespace { flags |= CLONE_NEWPID }
    if plan.unshareIPC { flags |= CLONE_NEWIPC }
    if unprivileged {
        try enterUserNamespace(Int32(flags), uid: uid, gid: gid)
    } else {
        try unshare(Int32(flags))
    }

    try stopMountPropagation()
    if let hostname = plan.hostname { try setHostname(hostname) }
    if plan.isolateNetwork { try bringLoopbackUp() }
}
