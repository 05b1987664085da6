#if canImport(Glibc)
import Glibc
#endif
import CPlashShims
import PlashKit
import PlashSystem

/// `plash sudo [CMD...]`: run a host command (default: the user's shell) as root of the
/// user's own user namespace, where the subordinate ids are mapped: the files of a store
/// that package managers chowned to them can be read and removed there. For root, just
/// the command.
@Sendable func sudo(_ arguments: [String]) throws -> Int32 {
    let command = arguments.isEmpty ? [loginShell()] : arguments
    try becomeRootOfUserNamespace()
    let argv = command.map { strdup($0) } + [nil]
    execvp(command[0], argv)
    throw PlashError.hostCommand(command[0], errno: errno).context("sudo")
}

/// For an ordinary user: enter a user namespace as its root, with the subordinate ids
/// mapped, so that store files owned by them can be removed. Nothing for root.
func becomeRootOfUserNamespace() throws {
    let uid = geteuid(), gid = getegid()
    guard uid != 0 else { return }
    // Root inside, but still this user's store (and not /var/lib/plash).
    setenv("PLASH_DATA", dataDirectory(), 1)
    do {
        try enterUserNamespace(CLONE_NEWUSER, uid: uid, gid: gid)
    } catch {
        throw PlashError.failure("\(error)")
    }
}

