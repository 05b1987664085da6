#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PlashExec
import PlashSystem

/// An image's files, merged: the top layer's directory for a one-layer image, else a
/// read-only overlay of its layers (top first) mounted at `target`. nosuid and nodev:
/// an image's setuid files and device nodes, from any imported tar, must give nobody
/// on the host root or a device through the mount point.
func mountImage(_ image: Store.Image, store: Store, on target: String) throws {
    let layers = store.layers(of: image)
    let safe = UInt(MS_RDONLY | MS_NOSUID | MS_NODEV)
    if layers.count == 1 {
        try PlashSystem.mount(layers[0], on: target, flags: UInt(MS_BIND | MS_REC), what: "bind")
        // A bind mount takes its flags only from a remount; never leave it writable.
        do {
            try PlashSystem.mount("none", on: target, flags: UInt(MS_BIND | MS_REMOUNT) | safe, what: "make read-only")
        } catch {
            umount2(target, Int32(MNT_DETACH))
            throw error
        }
        return
    }
    // Layers are named by descriptor (PlashSystem.mountOverlay): as deep as overlayfs goes.
    var opened: [Int32] = []
    defer { opened.forEach { close($0) } }
    for dir in layers { opened.append(try openDirectory(dir, what: "layer")) }
    try mountOverlay("plash:\(image.id)", on: target, lowers: opened, flags: safe)
}

/// `plash mount ID DIR`: the image, read-only, at DIR on the host. Only root: an
/// ordinary user mounts only inside a user namespace of their own, which the host
/// never sees, whatever the kernel or fuse-overlayfs.
public func mountImage(_ image: Store.Image, store: Store, at dir: String) throws {
    guard geteuid() == 0 else {
        throw PlashError.failure("mount \(image.id) on \(dir): only root can mount on the host (read an image with plash run or plash export-tar)")
    }
    do { try mountImage(image, store: store, on: dir) } catch { throw PlashError.failure("mount \(image.id) on \(dir): \(error)") }
}

public func unmountImage(_ dir: String) throws {
    do {
        try check(umount2(dir, 0), "umount", dir)
    } catch let error as PlashError where error.errno == EPERM && geteuid() != 0 {
        throw error.advising("only root mounts and unmounts images on the host")
    }
}

/// `plash export-tar ID FILE|-`: the image's merged files as a tar. The overlay is
/// mounted in a mount namespace of our own, so it vanishes with this process however
/// it ends.
public func exportTar(_ image: Store.Image, to file: String, store: Store) throws {
    let staging = try store.makeStaging("export")
    defer { try? removeTree(staging.path) }
    let root = staging.path + "/root"
    do {
        try check(mkdir(root, 0o755), "create", root)
        try PlashSystem.unshare(0x0002_0000)  // CLONE_NEWNS, not imported from sched.h
        try PlashSystem.mount("none", on: "/", flags: UInt(MS_REC | MS_PRIVATE), what: "make / private")
        try mountImage(image, store: store, on: root)
        var arguments = ["tar", "-c", "--numeric-owner", "--xattrs", "--xattrs-include=security.capability",
                         "--xattrs-include=user.*", "-C", root, "."]
        if file != "-" { arguments += ["-f", file] }
        try runHelper(arguments, streams: Streams(stdin: .null), context: "archive")
        umount2(root, Int32(MNT_DETACH))
    } catch {
        throw error.context("export-tar \(image.id)")
    }
}
