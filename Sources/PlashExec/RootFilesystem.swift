#if canImport(Glibc)
import Glibc
#endif
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

    var options = "lowerdir=\(lowerdir),upperdir=\(upper),workdir=\(work)"
    if !asRoot { options += ",userxattr" }
    try mount(layers.label, on: mountPoint, type: "overlay", options: options, what: "mount overlay on")
    return RootMount(fd: try openDirectory(mountPoint, what: "overlay"), path: mountPoint)
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
