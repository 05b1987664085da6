#if canImport(Glibc)
import Glibc
#endif
import CPlashShims
import PlashSystem

/// Leave the host's mount namespace (and its UTS and network namespaces, when asked).
/// An ordinary user first gets a user namespace in which they are root, which is what
/// allows the rest without privileges.
public func enterNamespaces(_ plan: ExecPlan, asRoot: Bool) throws {
    let uid = geteuid(), gid = getegid()
    let unprivileged = !asRoot
    var flags = CLONE_NEWNS
    if unprivileged { flags |= CLONE_NEWUSER }
    if plan.hostname != nil { flags |= CLONE_NEWUTS }
    if plan.isolateNetwork { flags |= CLONE_NEWNET }
    if unprivileged {
        try enterUserNamespace(Int32(flags), uid: uid, gid: gid)
    } else {
        try unshare(Int32(flags))
    }

    try stopMountPropagation()
    if let hostname = plan.hostname { try setHostname(hostname) }
    if plan.isolateNetwork { try bringLoopbackUp() }
}
