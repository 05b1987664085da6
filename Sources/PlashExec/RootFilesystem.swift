#if canImport(Glibc)
import Glibc
#endif
import CPlashShims
import PlashSystem

/// The container's root: an overlay of the image's layers with a writable layer on
/// top, mounted inside a scratch tmpfs that only this mount namespace has (below).
public struct RootMount {
    public var fd: Int32       // O_PATH handle of the overlay's root
    public var path: String
    public var scratch: Int32? = nil   // the scratch tmpfs, when it is stacked on the old root's `/`
    /// The mount points made in a layer of their own, which the image lacks.
    public var madeMountPoints: [String] = []
}

/// `hostRoot`: root of the machine's first user namespace, whose overlay keeps its
/// metadata in trusted.* xattrs; everyone else's, in user.* (`userxattr`). Those of
/// `mountPoints` that the image lacks are made in a layer of their own (MountPoints.swift).
public func mountRoot(_ layers: Layers, persist: PersistentUpper?, hostRoot: Bool,
                      mountPoints: [MountPoint] = []) throws -> RootMount {
    // Reach every layer first (LowerLayers): what is mounted over their paths below
    // hides none of them.
    let lowers = try LowerLayers(opening: layers.directories)
    defer { lowers.close() }
    // Opened here, in this mount namespace: overlayfs takes no upper layer from another.
    var upper: (Int32, Int32)? = nil
    defer { if let upper { close(upper.0); close(upper.1) } }
    if let persist {
        let path = try openDirectory(persist.path, what: "persist directory")
        do {
            upper = (path, try openDirectory(persist.workPath, what: "persist work directory"))
        } catch {
            close(path)
            throw error
        }
    }

    if environment("PLASH_OVERLAY") != "fuse" {
        do {
            return try mountKernelOverlay(layers, lowers, upper: upper, hostRoot: hostRoot, mountPoints: mountPoints)
        } catch let error as PlashError where !hostRoot && access(fuseOverlay, X_OK) == 0
                    && error.step == .mountOverlay && (error.errno == EPERM || error.errno == EINVAL) {
            // Kernels before 5.11 refuse overlayfs in a user namespace: use FUSE.
        } catch let error as PlashError where error.step == .mountOverlay && persist != nil
                    && plash_is_overlay(upper!.0) == 1 {
            // What plash inside a container meets when its store is on the container's root.
            throw error.advising("--persist \(persist!.path) lies on overlayfs, which takes no upper layer there: "
                                 + "keep it, or the store a build persists in, on a tmpfs or a bind mount")
        }
    }
    return try mountFuseOverlay(layers, lowers, persist: persist, mountPoints: mountPoints)
}

/// The writable layer and the overlay's mount point live in a scratch tmpfs that only
/// this mount namespace has, and that is gone when the last process of the container
/// exits. It writes nothing on the host, and hides nothing that is still needed: a walk
/// never enters a mount stacked on the point it starts from, and every host path still
/// needed was opened before. A stored image's layers lie side by side in the store's
/// files/, which no step reaches by its path (a --persist directory lies in tmp/): the
/// tmpfs is mounted on that directory, which is reached only through its handle from
/// now on, a mount below the old root, which goes with the old root's one detach at
/// pivot_root (each detach waits for an RCU grace period, about a twentieth of a
/// millisecond here). Else (--root, --lower: any directory, which may hold a --persist
/// directory that a failed start removes by its path) it is stacked on this mount
/// namespace's `/`, even when the image is `/`, and detached by itself (pivotRoot).
func mountKernelOverlay(_ layers: Layers, _ lowers: LowerLayers, upper persistent: (Int32, Int32)?,
                        hostRoot: Bool, mountPoints: [MountPoint] = []) throws -> RootMount {
    let directories = ["upper", "work", "root"]
    let onLayers = layers.inStoreFiles && lowers.directory >= 0
    var scratch = plash_mount_scratch(onLayers ? lowers.directory : -1)
    var mountedClassically = false
    if scratch == -1 && errno == ENOSYS {
        // Before Linux 5.2 (no fsopen): a tmpfs mounted the classic way over the top
        // layer's directory, which is open already, as for fuse-overlayfs below. Only
        // the image `/` has no such directory.
        let base = layers.directories[0]
        guard base != "/" && splitLast(base).1 != "" else {
            throw PlashError.system("mount scratch tmpfs on", "/").needing(.fsopen)
        }
        _ = try lowers.descriptors()
        scratch = try mountScratch(on: base, with: directories)
        mountedClassically = true
    } else {
        try check(scratch, "mount scratch tmpfs on", onLayers ? splitLast(lowers.paths[0]).0 : "/")
    }
    do {
        if !mountedClassically {
            for dir in directories { try check(mkdirat(scratch, dir, 0o755), "create scratch directory", dir) }
        }
        let (upper, work) = persistent.map { (procPath($0.0), procPath($0.1)) }
            ?? (procPath(scratch) + "/upper", procPath(scratch) + "/work")
        let mountPoint = procPath(scratch) + "/root"
        var made: [String] = []
        var lowest = lowers
        defer { if lowest !== lowers { lowest.close() } }
        if let persistent, !mountPoints.isEmpty && roomForMountPointLayer(lowers.paths.count) {
            // Asked of the image as the container sees it, what earlier runs kept in the
            // --persist directory included, on an overlay of its own whose writable layer
            // is this tmpfs: no second overlay shares the --persist directory as upper
            // layer. Left mounted, it goes with this tmpfs at pivot_root: an unmount now
            // would wait for the kernel (an RCU grace period, or for an overlay on the
            // --persist directory a sync of its file system: up to a tenth of a second).
            try check(mkdirat(scratch, "probe", 0o755), "create scratch directory", "probe")
            let probe = procPath(scratch) + "/probe"
            do {
                let withPersisted = try lowers.below(persistent.0, path: "persist directory")
                defer { withPersisted.close() }
                try mountOverlay(layers.label, on: probe, lowers: withPersisted, upper: procPath(scratch) + "/upper",
                                 work: procPath(scratch) + "/work", userxattr: !hostRoot)
            } catch let error as PlashError where error.errno == ELOOP {
                // The directory lies in a layer (--root / --persist DIR): overlayfs takes
                // no lower layer inside another. Asked of the image alone.
                try mountOverlay(layers.label, on: probe, lowers: lowers, upper: procPath(scratch) + "/upper",
                                 work: procPath(scratch) + "/work", userxattr: !hostRoot)
            }
            made = try makeMountPointLayer(mountPoints, in: scratch, overlay: probe)
            if !made.isEmpty {
                let top = try check(openat(scratch, "mount-points", plash_O_PATH | O_DIRECTORY | O_CLOEXEC), "open", "mount-points")
                lowest = try lowers.below(top, path: "mount-points", owning: true)
            }
        }
        try mountOverlay(layers.label, on: mountPoint, lowers: lowest, upper: upper, work: work, userxattr: !hostRoot)
        // A recursive bind of the old root (--bind /:/host, /proc/self/root) copies what
        // is mounted on it: not this tmpfs with the container in it. (Only now: overlayfs
        // takes a private clone of its upper layer's mount, which an unbindable one refuses.)
        try check(plash_mount_set_unbindable(scratch), "make unbindable", "scratch tmpfs")
        return RootMount(fd: try openDirectory(mountPoint, what: "overlay"), path: layers.directories[0],
                         scratch: mountedClassically || onLayers ? nil : scratch, madeMountPoints: made)
    } catch {
        // Off the old root again before a fallback to FUSE: see pivotRoot.
        umount2(procPath(scratch), Int32(MNT_DETACH))
        close(scratch)
        throw error
    }
}

/// A tmpfs over `mountPoint` with the given empty directories. It lives only as long
/// as this mount namespace: when the last process of the container exits, it is gone.
func mountScratch(on mountPoint: String, with directories: [String]) throws -> Int32 {
    try mount("tmpfs", on: mountPoint, type: "tmpfs", options: "mode=0755", what: "mount scratch tmpfs on")
    let scratch = try openDirectory(mountPoint, what: "scratch tmpfs")
    for dir in directories {
        if mkdirat(scratch, dir, 0o755) == -1 {
            close(scratch)
            throw PlashError.system("create scratch directory", mountPoint + "/" + dir)
        }
    }
    return scratch
}

let fuseOverlay = "/usr/bin/fuse-overlayfs"

/// The same overlay in user space, for kernels that refuse overlayfs to an ordinary
/// user, or when PLASH_OVERLAY=fuse. fuse-overlayfs opens its layers by path (and
/// resolves them with realpath), so it cannot use the unnamed scratch above, and none
/// of its layers may lie below its mount: a scratch tmpfs over the top layer's own
/// directory (in this mount namespace only) holds the top layer (bound, by its handle),
/// the writable layer and the mount point `root`. That needs an image directory of its
/// own: not `/`. plash-exec mounts the FUSE file system itself; fuse-overlayfs serves
/// it through the inherited /dev/fuse descriptor from a copy of this mount namespace,
/// which the coming pivot_root leaves alone. It must serve as long as the container
/// runs and then go: the kernel sends it SIGTERM when the program (this process, after
/// exec) exits. The one case where a process besides the program exists
/// (docs/plash-exec.md).
func mountFuseOverlay(_ layers: Layers, _ lowers: LowerLayers, persist: PersistentUpper?,
                      mountPoints: [MountPoint] = []) throws -> RootMount {
    let base = layers.directories[0]
    guard base != "/" && splitLast(base).1 != "" else {
        throw PlashError.failure("fuse-overlayfs cannot run the image /: it needs the kernel's overlayfs")
    }
    let top = try lowers.descriptors()[0]
    let scratch = try mountScratch(on: base, with: ["upper", "work", "top", "root"])
    defer { close(scratch) }
    try mount(procPath(top), on: base + "/top", flags: UInt(MS_BIND), what: "bind top layer on")
    var upper = base + "/upper", work = base + "/work"
    if let persist { (upper, work) = (persist.path, persist.workPath) }
    let lowerdir = ([base + "/top"] + layers.directories.dropFirst()).joined(separator: ":")
    let mountPoint = base + "/root"

    func serve(_ lowerdir: String) throws -> pid_t {
        let fuse = open("/dev/fuse", O_RDWR)
        if fuse == -1 {
            let error = PlashError.system("open", "/dev/fuse")
            throw errno == ENOENT || errno == ENODEV ? error.advising(fuseDeviceMissing) : error
        }
        defer { close(fuse) }
        // The label as the source, as for the kernel's overlay: ps, kill and rm find the
        // container by it.
        try mount(layers.label, on: mountPoint, type: "fuse.fuse-overlayfs", flags: UInt(MS_NODEV),
                  options: "fd=\(fuse),rootmode=40000,user_id=0,group_id=0,default_permissions,allow_other",
                  what: "mount fuse on")
        let words: [String] = [fuseOverlay, "-f", "-o", "lowerdir=\(lowerdir),upperdir=\(upper),workdir=\(work)",
                               "/dev/fd/\(fuse)"]
        let argv = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let server = plash_spawn_tied(argv, nil, 0)
        guard server > 0 else { throw PlashError.system("run", fuseOverlay) }
        return server
    }
    let server = try serve(lowerdir)
    var made: [String] = []
    if !mountPoints.isEmpty && roomForMountPointLayer(layers.directories.count) {
        made = try makeMountPointLayer(mountPoints, in: scratch, overlay: mountPoint)
        if !made.isEmpty {
            // It serves from a mount namespace of its own, where the unmount does not
            // reach: ended, and waited for, before another serves the same upper layer.
            // It has only looked up what exists: nothing of it to keep.
            umount2(mountPoint, Int32(MNT_DETACH))
            kill(server, SIGKILL)
            while waitpid(server, nil, 0) == -1 && errno == EINTR {}
            _ = try serve(base + "/mount-points:" + lowerdir)
        }
    }
    return RootMount(fd: try openDirectory(mountPoint, what: "fuse-overlayfs"), path: mountPoint, madeMountPoints: made)
}

/// `--persist DIR`: DIR is the overlay's upper layer. Overlayfs also needs an empty
/// work directory on the same filesystem that is not inside DIR; it lives beside DIR
/// as `.NAME.plash-work`. Two overlays on one upper layer are undefined behaviour
/// (the kernel only warns), so a container holds an flock on `plash.lock` in the work
/// directory for its whole life: the descriptor survives the exec, so the program and
/// every process it starts (unless they close it) hold it.
public struct PersistentUpper {
    public var path: String
    public var workPath: String
    var lock: Int32
    var created: [String]       // what this run created, deepest last

    /// Checks DIR before it writes anything; creates DIR and its work directory when
    /// missing, then takes the lock. `store` is the store's canonical path, when it exists.
    /// `mustBeRootsAlone`: see rootsAlone.
    public static func open(_ dir: String, store: String?, mustBeRootsAlone: Bool = false) throws -> PersistentUpper {
        let path = try persistPath(dir)
        if mustBeRootsAlone && !rootsAlone(path) {
            throw PlashError.failure("--persist \(path): other users can reach it, and with --isolate what the image holds lands there")
                .advising("keep it below a directory of root's that only root may enter (chmod 700), as the store is")
        }
        // The upper layer is the container's root: in the store it would change an image's
        // files, around the store reach them all. Only a build's own staging, below tmp/,
        // is persisted there (plash build).
        if let store, isPath(store, within: path)
            || (isPath(path, within: store) && !path.hasPrefix(StoreLayout(path: store).tmp + "/")) {
            throw PlashError.failure("--persist \(path): the store \(store) would be within the container's reach")
        }
        let (parent, name) = splitLast(path)
        let workPath = (parent == "/" ? "" : parent) + "/.\(name).plash-work"
        for candidate in [path, workPath] {
            var info = stat()
            if lstat(candidate, &info) == 0 {
                guard stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
                    throw PlashError.system("--persist", candidate, errno: ENOTDIR)
                }
            } else if errno != ENOENT {
                throw PlashError.system("--persist", candidate)
            }
        }
        var persistent = PersistentUpper(path: path, workPath: workPath, lock: -1, created: [])
        do {
            for candidate in [path, workPath] {
                if mkdir(candidate, 0o755) == 0 {
                    persistent.created.append(candidate)
                } else if errno != EEXIST {
                    throw PlashError.system("create persist directory", candidate)
                }
            }
            let lockPath = workPath + "/plash.lock"
            // Without O_CLOEXEC: the program inherits it (see above).
            persistent.lock = Glibc.open(lockPath, O_RDONLY | O_CREAT | O_NOFOLLOW, 0o644)
            try check(persistent.lock, "create persist lock", lockPath)
            if flock(persistent.lock, LOCK_EX | LOCK_NB) == -1 {
                if errno == EWOULDBLOCK {
                    throw PlashError.failure("--persist \(path): in use by another container (two overlays must not share an upper layer)")
                }
                throw PlashError.system("lock", lockPath)
            }
            return persistent
        } catch {
            persistent.discard()
            throw error
        }
    }

    /// After a failure before the container started: removes what this run created
    /// (with the mount points and the work files overlayfs made in it), so a refused or
    /// failed start leaves nothing behind.
    public func discard() {
        if lock >= 0 { close(lock) }
        for dir in created.reversed() { removeCreated(dir) }
    }
}

/// Whether some directory above `path` is root's and closed to everyone else, as the
/// store is. A root container of --isolate cannot set set-id bits or make device nodes,
/// but the image's own, copied up into the upper layer when touched, land in the
/// --persist directory: a setuid shell or a node of the host's disk of a hostile image
/// must not be there for any user of the host to run or open.
func rootsAlone(_ path: String) -> Bool {
    var ancestor = splitLast(path).0
    while true {
        var info = stat()
        if stat(ancestor, &info) == 0 && info.st_uid == 0 && info.st_mode & 0o011 == 0 { return true }
        if ancestor == "/" { return false }
        ancestor = splitLast(ancestor).0
    }
}

/// rm -r of a directory this run created; overlayfs leaves mode-000 directories in
/// its work directory.
func removeCreated(_ path: String) {
    var info = stat()
    guard lstat(path, &info) == 0 else { return }
    if (info.st_mode & S_IFMT) == S_IFDIR {
        chmod(path, 0o700)
        for child in directoryEntries(path) ?? [] { removeCreated(path + "/" + child) }
        rmdir(path)
    } else {
        unlink(path)
    }
}

/// `--persist DIR` as an absolute path without symlinks, `.` or `..`: the work
/// directory goes beside it, which DIR = `/` does not have.
func persistPath(_ dir: String) throws -> String {
    guard !dir.isEmpty else { throw PlashError.usage("--persist: needs a directory") }
    let resolved: String
    if let full = realpath(dir, nil) {
        resolved = String(cString: full)
        free(full)
    } else {
        let (parent, name) = splitLast(dir)
        guard errno == ENOENT, !name.isEmpty, name != ".", name != "..", let full = realpath(parent, nil) else {
            throw PlashError.system("--persist", dir)
        }
        let parentPath = String(cString: full)
        free(full)
        resolved = (parentPath == "/" ? "" : parentPath) + "/" + name
    }
    guard resolved != "/" else {
        throw PlashError.usage("--persist /: the work directory must live beside the persist directory; give one of its own")
    }
    return resolved
}
