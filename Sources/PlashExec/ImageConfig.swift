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
/// has no such directory.
func enterImageDirectory(_ dir: String) throws {
    if chdir(dir) == 0 { return }
    guard errno == ENOENT, dir.hasPrefix("/") else { throw PlashError.system("chdir to the image's WorkingDir", dir) }
    var path = ""
    for part in dir.split(separator: "/") {
        path += "/" + part
        if mkdir(path, 0o755) == -1 && errno != EEXIST { throw PlashError.system("create the image's WorkingDir", path) }
    }
    try check(chdir(dir), "chdir to the image's WorkingDir", dir)
}
