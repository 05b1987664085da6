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

/// A bind's source, opened before anything is mounted in this namespace, and its path
/// without symlinks, `.` or `..`: what the store is checked against.
public struct BindSource {
    public let fd: Int32
    public let path: String
}

/// The sources of `mounts`, opened before anything is mounted in this namespace, so
/// that nothing mounted later (the scratch tmpfs, an earlier bind) changes what a
/// source path names. nil for a new procfs, and for a --bind-try of a missing source.
public func openSources(_ mounts: [Bind]) throws -> [BindSource?] {
    var opened: [BindSource?] = []
    do {
        for mount in mounts {
            if mount.newProcfs || mount.newTmpfs { opened.append(nil); continue }
            let step: Step = mount.readOnly ? "ro-bind source" : "bind source"
            let source = openSource(mount.source)
            if source == nil && errno == ENOENT && mount.optional { opened.append(nil); continue }
            guard let source else { throw PlashError.system(step, mount.source) }
            opened.append(source)
        }
        return opened
    } catch {
        opened.forEach { $0.map { _ = close($0.fd) } }
        throw error
    }
}

/// `path` opened, and named. An absolute path of plain names opened with no symlink on
/// its way is its own name. Any other is named by the kernel (a readlink of
/// /proc/self/fd/N, the procfs lookup of which cost about 10 µs for each of the nine
/// binds of a plain run); `..` and symlinks are resolved there, never in the text.
func openSource(_ path: String) -> BindSource? {
    if isPlainAbsolute(path) {
        let fd = plash_open_without_symlinks(path, plash_O_PATH | O_CLOEXEC)
        if fd >= 0 { return BindSource(fd: fd, path: path) }
        // A symlink on the way, or a kernel before 5.6: the kernel names it below.
        if errno != ELOOP && errno != ENOSYS { return nil }
    }
    let fd = open(path, plash_O_PATH | O_CLOEXEC)
    if fd == -1 { return nil }
    return BindSource(fd: fd, path: readLink(procPath(fd)).flatMap { $0.hasPrefix("/") ? $0 : nil } ?? path)
}

/// `/` followed by names, none empty, `.` or `..`: `/`, `/home/alice`, not `/home/`.
func isPlainAbsolute(_ path: String) -> Bool {
    guard path.hasPrefix("/") else { return false }
    if path == "/" { return true }
    return !path.utf8.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).contains {
        $0.isEmpty || $0.elementsEqual(".".utf8) || $0.elementsEqual("..".utf8)
    }
}

/// `store` is the store's canonical path, when it exists.
public func mountShared(_ mounts: [Bind], sources: [BindSource?], into root: RootMount, store: String?) throws {
    var hidden: [String] = []
    for (mount, opened) in zip(mounts, sources) {
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
        guard let opened else { continue }    // --bind-try of a missing source
        defer { close(opened.fd) }
        let source = opened.fd, sourcePath = opened.path
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
