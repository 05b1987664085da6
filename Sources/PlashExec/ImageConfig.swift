#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

// An image's config (PlashSystem's RunConfig, kept in the image's node) applied with
// the rules of `podman run`; where the image says nothing, plash's defaults stay:
// - no command: Entrypoint + Cmd; a command replaces Cmd and keeps Entrypoint;
//   --entrypoint replaces Entrypoint and drops Cmd (docker's rule), '' clears it;
// - Env is set before --env, PLASH_EXPORT and --env-file, which win;
// - User is --user's default (the same resolution in the image's passwd and group);
// - WorkingDir is --cwd's default, created when the image lacks it, as podman does.

/// The program and its arguments, or nil when neither the caller nor the image names
/// one (then plash-exec runs /bin/sh, plash run root's shell).
public func programArguments(_ plan: ExecPlan, image: RunConfig?) -> [String]? {
    let entrypoint = plan.entrypoint ?? image?.entrypoint ?? []
    let command = !plan.command.isEmpty || plan.entrypoint != nil ? plan.command : image?.command ?? []
    let words = entrypoint + command
    return words.isEmpty ? nil : words
}

/// The plan with the image's User as the --user that was not given.
public func withImageUser(_ plan: ExecPlan, image: RunConfig?) -> ExecPlan {
    var plan = plan
    if plan.user == nil, let user = image?.user, !user.isEmpty { plan.user = user }
    return plan
}

/// Enters the image's WorkingDir (after pivot_root), making it first when the image
/// has no such directory. Made only in the container's own root: a directory of the
/// host that is shared (/home, /tmp, the caller's) is never written to for it.
func enterImageDirectory(_ dir: String) throws {
    if chdir(dir) == 0 { return }
    guard errno == ENOENT, dir.hasPrefix("/") else { throw PlashError.system("chdir to the image's WorkingDir", dir) }
    var root = stat()
    try check(stat("/", &root), "stat", "/")
    var path = ""
    for part in dir.split(separator: "/") {
        var parent = stat()
        try check(stat(path.isEmpty ? "/" : path, &parent), "stat", path)
        path += "/" + part
        if access(path, F_OK) == 0 { continue }
        // A directory of the overlay has the overlay's device; a shared one, the host's.
        guard parent.st_dev == root.st_dev else {
            throw PlashError.failure("the image's WorkingDir \(dir): \(splitLast(path).0) is the host's (shared), "
                                     + "where plash-exec makes nothing").advising("give --cwd DIR, or --no-home / --no-tmp")
        }
        if mkdir(path, 0o755) == -1 && errno != EEXIST { throw PlashError.system("create the image's WorkingDir", path) }
    }
    try check(chdir(dir), "chdir to the image's WorkingDir", dir)
}
