#if canImport(Glibc)
import Glibc
#endif
import CPlashShims
import PlashSystem

/// What the container shares with the host, in mount order (parents before children):
/// the kernel's file systems, /tmp, /home and $HOME, the caller's working directory,
/// the name service files, then the caller's own --bind and --ro-bind.
public func sharedMounts(_ plan: ExecPlan, home: String?, callerDirectory: String?,
                         hostHas: (String) -> Bool = hostHasPath,
                         hostEntries: (String) -> [String] = { directoryEntries($0) ?? [] }) -> [Bind] {
    var proc = Bind("/proc", "/proc")
    proc.newProcfs = plan.pidNamespace
    var mounts = [proc] + (plan.minimalDev ? minimalDevices(hostHas: hostHas) : [Bind("/dev", "/dev")]) + [Bind("/sys", "/sys")]
    var unshared: [String] = []
    if plan.shareTmp { mounts.append(Bind("/tmp", "/tmp")) } else { unshared.append("/tmp") }

    // $HOME outside /home is shared only where the image has nothing at that path: a
    // home of /bin or /var/www (Debian's bin and www-data) must not hide the image's.
    let ownHome = home.flatMap { $0.hasPrefix("/") && $0 != "/" && !isPath($0, within: "/home") ? $0 : nil }
    var homes = [Bind("/home", "/home")]
    if plan.readOnlyShares {
        // Entry by entry, so that /home itself stays the image's: what a build step makes
        // there (`adduser web`: /home/web) lands in the image, never on the host. An
        // entry gone since it was listed is skipped.
        homes = hostEntries("/home").sorted().map {
            var entry = Bind("/home/" + $0, "/home/" + $0, readOnly: true, onlyWhereImageHasNone: true)
            entry.optional = true
            return entry
        }
    }
    if let ownHome { homes.append(Bind(ownHome, ownHome, readOnly: plan.readOnlyShares, onlyWhereImageHasNone: true)) }
    if plan.shareHome {
        mounts += homes.filter { hostHas($0.source) }
    } else {
        unshared += ["/home"] + (ownHome.map { [$0] } ?? [])
    }

    // Read-only, the working directory is shared in an unshared /tmp too: a build run
    // from there reads its files, and its relative writes fail instead of landing in
    // the image's / (the image's /tmp is where its own writes to /tmp go).
    if plan.workingDirectory == nil, let cwd = callerDirectory, cwd != "/",
       !mounts.contains(where: { isPath(cwd, within: $0.destination) }),
       !unshared.contains(where: { isPath(cwd, within: $0) && !(plan.readOnlyShares && $0 == "/tmp") }) {
        mounts.append(Bind(cwd, cwd, readOnly: plan.readOnlyShares, onlyWhereImageHasNone: true))
    }

    mounts += ["/etc/resolv.conf", "/etc/hosts"].filter(hostHas).map { Bind($0, $0) }
    return mounts + plan.binds
}

/// Whether `path` exists on the host (a dangling symlink does not).
public func hostHasPath(_ path: String) -> Bool { access(path, F_OK) == 0 }

/// The sources of `mounts`, opened before anything is mounted in this namespace, so
/// that nothing mounted later (the scratch tmpfs, an earlier bind) changes what a
/// source path names. nil for a new procfs.
public func openSources(_ mounts: [Bind]) throws -> [Int32?] {
    var opened: [Int32?] = []
    do {
        for mount in mounts {
            if mount.newProcfs || mount.newTmpfs { opened.append(nil); continue }
            let step: Step = mount.readOnly ? "ro-bind source" : "bind source"
            let fd = open(mount.source, plash_O_PATH | O_CLOEXEC)
            if fd == -1 && errno == ENOENT && mount.optional { opened.append(nil); continue }
            opened.append(try check(fd, step, mount.source))
        }
        return opened
    } catch {
        opened.forEach { $0.map { _ = close($0) } }
        throw error
    }
}

/// `store` is the store's canonical path, when it exists.
public func mountShared(_ mounts: [Bind], sources: [Int32?], into root: RootMount, store: String?) throws {
    var hidden: [String] = []
    for (mount, source) in zip(mounts, sources) {
        if mount.onlyWhereImageHasNone && !root.madeMountPoints.contains(mount.destination)
            && exists(mount.destination, in: root.fd) { continue }
        if mount.newProcfs {
            let target = try openOrCreate(mount.destination, in: root.fd, directory: true)
            defer { close(target) }
            try PlashSystem.mount("proc", on: procPath(target), type: "proc",
                                  flags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), what: "mount proc on")
            continue
        }
        if mount.newTmpfs {
            let target = try openOrCreate(mount.destination, in: root.fd, directory: true)
            defer { close(target) }
            try refuseRoot(target, root: root, mount)
            try check(Glibc.mount("tmpfs", procPath(target), "tmpfs", UInt(MS_NOSUID | MS_NODEV), "mode=1777"),
                      "mount tmpfs on", mount.destination)
            continue
        }
        guard let source else { continue }    // --bind-try of a missing source
        defer { close(source) }
        let sourcePath = sharedSourcePath(source, mount)
        if let store, isPath(sourcePath, within: store) {
            // The working directory inside the store is simply not shared; an explicit
            // bind of the store is refused.
            if mount.onlyWhereImageHasNone { continue }
            throw PlashError.failure("bind \(mount.source): lies in the store \(store), which no container may reach")
        }
        var info = stat()
        try check(fstat(source, &info), mount.readOnly ? "ro-bind source" : "bind source", mount.source)
        let directory = (info.st_mode & S_IFMT) == S_IFDIR
        let target = try openOrCreate(mount.destination, in: root.fd, directory: directory)
        defer { close(target) }
        try refuseRoot(target, root: root, mount)
        do {
            try bind(procPath(source), named: mount.source, onto: target, path: mount.destination)
        } catch let error as PlashError where mount.optional && error.errno == ENOENT {
            continue    // removed since it was opened
        }
        if mount.readOnly || mount.noDevices && directory {
            // The bind covers `target`; only a fresh lookup reaches the new mount.
            let mounted = try openOrCreate(mount.destination, in: root.fd, directory: directory)
            defer { close(mounted) }
            if mount.readOnly { try makeReadOnly(mounted, path: mount.destination) }
            if mount.noDevices && directory {
                try makeNoDevices(mounted, path: mount.destination)
            }
        }
        if let store, isPath(store, within: sourcePath) {
            let below = sourcePath == "/" ? store : String(store.dropFirst(sourcePath.count))
            hidden.append((mount.destination == "/" ? "" : mount.destination) + below)
        }
    }
    for path in hidden { try hideStore(at: path, in: root) }
}

/// The path of a bind's open source. The kernel's name of it is already without
/// symlinks, `.` and `..`: one readlink instead of realpath's one per component.
func sharedSourcePath(_ source: Int32, _ mount: Bind) -> String {
    readLink(procPath(source)).flatMap { $0.hasPrefix("/") ? $0 : nil } ?? mount.source
}

/// pivot_root makes the overlay the root, not what is stacked on it: a mount on `/`
/// (or `/..`, `/etc/..`, a symlink to `/`) would be silently ignored.
func refuseRoot(_ target: Int32, root: RootMount, _ mount: Bind) throws {
    var targetInfo = stat(), rootInfo = stat()
    try check(fstat(target, &targetInfo), "open mount point", mount.destination)
    try check(fstat(root.fd, &rootInfo), "open mount point", "/")
    guard targetInfo.st_dev == rootInfo.st_dev && targetInfo.st_ino == rootInfo.st_ino else { return }
    if mount.newTmpfs { throw PlashError.usage("--tmpfs \(mount.destination): the root is the image") }
    throw PlashError.failure("bind \(mount.source) on \(mount.destination): the root is the image (use --root \(mount.source))")
}

/// The store, where a shared directory contains it, is covered by an empty read-only
/// tmpfs: a container must never change an image or a compiled seccomp filter. Last,
/// so that no later bind lands on top of it.
func hideStore(at path: String, in root: RootMount) throws {
    let fd = plash_open_in_root(root.fd, path, plash_O_PATH | O_DIRECTORY | O_CLOEXEC, 0)
    if fd == -1 && errno == ENOENT { return }    // a later bind covered the way there
    try check(fd, "hide the store at", path, needs: .openat2)
    defer { close(fd) }
    try PlashSystem.mount("tmpfs", on: procPath(fd), type: "tmpfs",
                          flags: UInt(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC),
                          options: "mode=0755,size=0", what: "hide the store at")
}

/// The path without symlinks, `.` or `..`, or nil when it does not exist.
public func canonicalPath(_ path: String) -> String? {
    guard let full = realpath(path, nil) else { return nil }
    defer { free(full) }
    return String(cString: full)
}
