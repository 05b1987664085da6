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
    let lowerdir = opened.map(procPath).joined(separator: ":")
    let mountPoint = layers.directories[0]

    let upper: String, work: String
    if let persist {
        let (upperFd, workFd) = try openPersistentUpper(persist)
        opened += [upperFd, workFd]
        upper = procPath(upperFd)
        work = procPath(workFd)
    } else {
        // A tmpfs that lives only as long as this mount namespace: when the last
        // process of the container exits, its writes are gone.
        try mount("tmpfs", on: mountPoint, type: "tmpfs", options: "mode=0755", what: "mount scratch tmpfs on")
        let scratch = try openDirectory(mountPoint, what: "scratch tmpfs")
        opened.append(scratch)
        for dir in ["upper", "work"] {
            try check(mkdirat(scratch, dir, 0o755), "create scratch directory", dir)
        }
        upper = procPath(scratch) + "/upper"
        work = procPath(scratch) + "/work"
    }

    let options = "lowerdir=\(lowerdir),upperdir=\(upper),workdir=\(work)"
    if environment("PLASH_OVERLAY") == "fuse" {
        try mountFuseOverlay(options, on: mountPoint, passing: opened)
    } else {
        do {
            // In a user namespace overlayfs keeps its whiteouts and metadata in user.*
            // xattrs, which an unprivileged user may write.
            try mount(layers.label, on: mountPoint, type: "overlay", options: options + (asRoot ? "" : ",userxattr"),
                      what: "mount overlay on")
        } catch let error as SyscallError where !asRoot && access(fuseOverlay, X_OK) == 0 {
            // Kernels before 5.11 refuse overlayfs in a user namespace.
            guard error.errno == EPERM || error.errno == EINVAL else { throw error }
            try mountFuseOverlay(options, on: mountPoint, passing: opened)
        }
    }
    return RootMount(fd: try openDirectory(mountPoint, what: "overlay"), path: mountPoint)
}

let fuseOverlay = "/usr/bin/fuse-overlayfs"

/// The same overlay in user space, for kernels that refuse overlayfs to an ordinary
/// user, or when PLASH_OVERLAY=fuse. fuse-overlayfs must serve the container as long
/// as it runs and then go: it runs in the foreground as a child that the kernel sends
/// SIGTERM when the program (this process, after exec) exits. The one case where a
/// process besides the program exists (docs/plash-exec.md).
func mountFuseOverlay(_ options: String, on mountPoint: String, passing fds: [Int32]) throws {
    var before = stat()
    try check(stat(mountPoint, &before), "stat", mountPoint)
    // The options name the layers as /proc/self/fd/N: fuse-overlayfs inherits them.
    for fd in fds { _ = fcntl(fd, F_SETFD, 0) }
    let words: [String] = [fuseOverlay, "-f", "-o", options, mountPoint]
    let argv = words.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let pid = plash_spawn_tied(argv)
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    guard pid > 0 else { throw SyscallError("run", fuseOverlay) }

    // Mounted when the mount point's device changes; failed when the child exits.
    for _ in 0..<5000 {
        var now = stat()
        if stat(mountPoint, &now) == 0 && now.st_dev != before.st_dev { return }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { break }
        usleep(1000)
    }
    kill(pid, SIGKILL)
    throw SyscallError("mount fuse-overlayfs on", mountPoint, errno: EIO)
}
/// `--persist DIR`: DIR is the overlay's upper layer. Overlayfs also needs an empty
/// work directory on the same filesystem that is not inside DIR; it lives beside DIR
/// as `.NAME.plash-work`.
func openPersistentUpper(_ dir: String) throws -> (Int32, Int32) {
    let (parent, name) = splitLast(dir)
    let work = (parent == "/" ? "" : parent) + "/.\(name).plash-work"
    for path in [dir, work] where mkdir(path, 0o755) == -1 && errno != EEXIST {
        throw SyscallError("create persist directory", path)
    }
    let upperFd = try openDirectory(dir, what: "persist directory")
    do {
        return (upperFd, try openDirectory(work, what: "persist work directory"))
    } catch {
        close(upperFd)
        throw error
    }
}
