#if canImport(Glibc)
import Glibc
#endif
import CPlashShims
import PlashSystem

/// The container's root: an overlay of the image's layers with a writable layer on
/// top, mounted over the top layer's own directory (only this mount namespace sees it).
public struct RootMount {
    public var fd: Int32       // O_PATH handle of the overlay's root
    public var path: String
}

public func mountRoot(_ layers: Layers, persist: String?, asRoot: Bool) throws -> RootMount {
    // Open every layer first: the overlay names them as /proc/self/fd/N, which keeps
    // the option string short (128 layers fit the 4096-byte limit) and makes the
    // layers immune to what is mounted over their paths below.
    var opened: [Int32] = []
    defer { opened.forEach { close($0) } }
    for dir in layers.directories { opened.append(try openDirectory(dir, what: "layer")) }

    if environment("PLASH_OVERLAY") != "fuse" {
        do {
            return try mountOverlay(layers, opened, persist: persist, asRoot: asRoot)
        } catch let error as PlashError where !asRoot && access(fuseOverlay, X_OK) == 0
                    && error.step == .mountOverlay && (error.errno == EPERM || error.errno == EINVAL) {
            // Kernels before 5.11 refuse overlayfs in a user namespace: use FUSE.
        }
    }
    return try mountFuseOverlay(layers, opened, persist: persist)
}

func mountOverlay(_ layers: Layers, _ lowers: [Int32], persist: String?, asRoot: Bool) throws -> RootMount {
    let mountPoint = layers.directories[0]
    var opened: [Int32] = []
    defer { opened.forEach { close($0) } }
    let upper: String, work: String
    if let persist {
        let (upperFd, workFd) = try openPersistentUpper(persist)
        opened += [upperFd, workFd]
        upper = procPath(upperFd)
        work = procPath(workFd)
    } else {
        let scratch = try mountScratch(on: mountPoint, with: ["upper", "work"])
        opened.append(scratch)
        upper = procPath(scratch) + "/upper"
        work = procPath(scratch) + "/work"
    }
    let lowerdir = lowers.map(procPath).joined(separator: ":")
    // In a user namespace overlayfs keeps its whiteouts and metadata in user.* xattrs,
    // which an unprivileged user may write.
    let options = "lowerdir=\(lowerdir),upperdir=\(upper),workdir=\(work)" + (asRoot ? "" : ",userxattr")
    try mount(layers.label, on: mountPoint, type: "overlay", options: options, what: "mount overlay on")
    return RootMount(fd: try openDirectory(mountPoint, what: "overlay"), path: mountPoint)
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
/// user, or when PLASH_OVERLAY=fuse. fuse-overlayfs opens its layers by path, so none
/// may lie below its mount: a scratch tmpfs over the top layer holds the top layer
/// (bound, by its handle), the writable layer and the mount point `root`. plash-exec
/// mounts the FUSE file system itself; fuse-overlayfs serves it through the inherited
/// /dev/fuse descriptor from a copy of this mount namespace, which the coming
/// pivot_root leaves alone. It must serve as long as the container runs and then go:
/// the kernel sends it SIGTERM when the program (this process, after exec) exits.
/// The one case where a process besides the program exists (docs/plash-exec.md).
func mountFuseOverlay(_ layers: Layers, _ lowers: [Int32], persist: String?) throws -> RootMount {
    let base = layers.directories[0]
    close(try mountScratch(on: base, with: ["upper", "work", "top", "root"]))
    try mount(procPath(lowers[0]), on: base + "/top", flags: UInt(MS_BIND), what: "bind top layer on")
    var upper = base + "/upper", work = base + "/work"
    if let persist {
        let (upperFd, workFd) = try openPersistentUpper(persist)
        close(upperFd)
        close(workFd)
        (upper, work) = (persist, persistentWorkDirectory(persist))
    }
    let lowerdir = ([base + "/top"] + layers.directories.dropFirst()).joined(separator: ":")
    let mountPoint = base + "/root"

    let fuse = try check(open("/dev/fuse", O_RDWR), "open", "/dev/fuse")
    defer { close(fuse) }
    try mount("fuse-overlayfs", on: mountPoint, type: "fuse.fuse-overlayfs", flags: UInt(MS_NODEV),
              options: "fd=\(fuse),rootmode=40000,user_id=0,group_id=0,default_permissions,allow_other",
              what: "mount fuse on")
    let words: [String] = [fuseOverlay, "-f", "-o", "lowerdir=\(lowerdir),upperdir=\(upper),workdir=\(work)",
                           "/dev/fd/\(fuse)"]
    let argv = words.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    guard plash_spawn_tied(argv) > 0 else { throw PlashError.system("run", fuseOverlay) }
    return RootMount(fd: try openDirectory(mountPoint, what: "fuse-overlayfs"), path: mountPoint)
}

/// `--persist DIR`: DIR is the overlay's upper layer. Overlayfs also needs an empty
/// work directory on the same filesystem that is not inside DIR; it lives beside DIR
/// as `.NAME.plash-work`.
func openPersistentUpper(_ dir: String) throws -> (Int32, Int32) {
    let work = persistentWorkDirectory(dir)
    for path in [dir, work] where mkdir(path, 0o755) == -1 && errno != EEXIST {
        throw PlashError.system("create persist directory", path)
    }
    let upperFd = try openDirectory(dir, what: "persist directory")
    do {
        return (upperFd, try openDirectory(work, what: "persist work directory"))
    } catch {
        close(upperFd)
        throw error
    }
}

func persistentWorkDirectory(_ dir: String) -> String {
    let (parent, name) = splitLast(dir)
    return (parent == "/" ? "" : parent) + "/.\(name).plash-work"
}
