#if canImport(Glibc)
import Glibc
#endif
import CPlashShims
import FoundationEssentials
import PlashExec
import PlashSystem

/// An image's files, merged: the top layer's directory for a one-layer image, else a
/// read-only overlay of its layers (top first) mounted at `target`. nosuid and nodev:
/// an image's setuid files and device nodes, from any imported tar, must give nobody
/// on the host root or a device through the mount point. `userxattr`: in a user
/// namespace, where overlayfs keeps its whiteouts and opaque marks in user.overlay.*
/// xattrs (as plash-exec wrote them there).
func mountImage(_ image: Store.Image, store: Store, on target: String, userxattr: Bool = false) throws {
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
    // Layers are passed one by one (PlashSystem.mountOverlay): as deep as overlayfs goes.
    let lowers = try LowerLayers(opening: layers)
    defer { lowers.close() }
    try mountOverlay("plash:\(image.id)", on: target, lowers: lowers, userxattr: userxattr, flags: safe)
}

/// `plash mount ID DIR`: the image, read-only, at DIR on the host. Only root: an
/// ordinary user mounts only inside a user namespace of their own, which the host
/// never sees, whatever the kernel or fuse-overlayfs.
public func mountImage(_ image: Store.Image, store: Store, at dir: String) throws {
    guard geteuid() == 0 else {
        throw PlashError.failure("mount \(image.id) on \(dir): only root can mount on the host (read an image with plash run or plash export-tar)")
    }
    // A second image on top would hide the first until both were unmounted, one by one.
    if let path = canonicalPath(dir), let top = MountEntry.table()?.last(where: { $0.mountPoint == path }), isImageMount(top) {
        throw PlashError.failure("mount \(image.id) on \(dir): an image of plash mount is mounted there already (plash umount \(dir) first)")
    }
    do { try mountImage(image, store: store, on: dir) } catch { throw PlashError.failure("mount \(image.id) on \(dir): \(error)") }
}

/// Whether a mount is one that plash mount made: an overlay of an image, or the bind of
/// a one-layer image's layer directory.
func isImageMount(_ entry: MountEntry) -> Bool {
    (entry.fileSystem == "overlay" && entry.source.hasPrefix("plash:")) || StoreLayout.isLayerDirectory(entry.root)
}

/// `plash umount DIR`: only what `plash mount` mounted there (the top mount at DIR);
/// any other file system at DIR, the host's own, is refused whatever DIR's spelling.
public func unmountImage(_ dir: String) throws {
    guard geteuid() == 0 else {
        throw PlashError.failure("umount \(dir): only root mounts and unmounts images on the host")
    }
    guard let full = realpath(dir, nil) else { throw PlashError.system("umount", dir) }
    let path = String(cString: full)
    free(full)
    // Later lines are mounted on top of earlier ones.
    guard let top = MountEntry.table()?.last(where: { $0.mountPoint == path }) else {
        throw PlashError.failure("umount \(dir): nothing is mounted there")
    }
    guard isImageMount(top) else {
        throw PlashError.failure("umount \(dir): \(top.fileSystem) \(top.source) is mounted there, not an image of plash mount")
    }
    try check(umount2(path, 0), "umount", dir)
}


/// `plash export-tar ID FILE|-`: the image's merged files as a tar, written by plash
/// (TarWriter), sorted, so the same image gives the same bytes. An image of several
/// layers is mounted as an overlay in a mount namespace of our own, so the mount
/// vanishes with this process however it ends. A FILE is written beside and renamed
/// into place: a failed export leaves no partial archive, and an older FILE intact.
/// `inUserNamespace`: an ordinary user's plash, root of its own user namespace.
public func exportTar(_ image: Store.Image, to file: String, store: Store, inUserNamespace: Bool = false) throws {
    let staging = try store.makeStaging("export")
    defer { try? removeTree(staging.path) }
    do {
        let layers = store.layers(of: image)
        var tree = image.data
        if layers.count > 1 {
            tree = staging.path + "/root"
            try check(mkdir(tree, 0o755), "create", tree)
            try PlashSystem.unshare(CLONE_NEWNS)
            try PlashSystem.mount("none", on: "/", flags: UInt(MS_REC | MS_PRIVATE), what: "make / private")
            try mountImage(image, store: store, on: tree, userxattr: inUserNamespace)
        }
        defer { if layers.count > 1 { umount2(tree, Int32(MNT_DETACH)) } }
        let root = try check(open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open", tree)
        defer { close(root) }

        let output = try ExportFile(file)
        defer { output.close() }
        try TarWriter(fd: output.fd, name: output.name).writeTree(root)
        try output.commit()
    } catch {
        throw error.context("export-tar \(image.id)")
    }
}

/// Where an export writes its archive. `-` is stdout. A FILE that is no regular file
/// (a device, a FIFO, `/dev/stdout` of a pipe) is opened and written, as a shell's `>`
/// does, never replaced. A regular FILE is written beside (`.FILE.plash-PID`) and renamed
/// into place by `commit`: a failed export leaves no partial archive and an earlier FILE
/// intact. A symlink to a regular file is followed: its target is replaced, the link stays.
struct ExportFile {
    let fd: Int32
    let name: String                // for errors
    private let partial: String?
    private let target: String

    init(_ file: String) throws {
        name = file == "-" ? "stdout" : file
        if file == "-" {
            (fd, partial, target) = (1, nil, file)
            return
        }
        var info = stat()
        let isLink = lstat(file, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
        var target = file
        if stat(file, &info) == 0 {
            let kind = info.st_mode & S_IFMT
            guard kind != S_IFDIR else { throw PlashError.system("write", file, errno: EISDIR) }
            if kind != S_IFREG {
                // No O_CREAT: only what is there is opened, whatever it became since stat.
                (fd, partial, self.target) = (try check(open(file, O_WRONLY | O_NOCTTY | O_CLOEXEC), "open", file), nil, file)
                return
            }
            if isLink, let real = canonicalPath(file) { target = real }
        } else if isLink {
            throw PlashError.system("write", file)   // a link to nothing
        }
        let (dir, base) = splitLast(target)
        let partial = dir + "/." + base + ".plash-\(getpid())"
        (fd, self.partial, self.target) = (try createPartial(partial), partial, target)
    }

    /// The archive is whole: a regular FILE takes its place.
    func commit() throws {
        guard let partial else { return }
        try check(rename(partial, target), "rename", name)
    }

    /// Closes the file; a partial one that was not committed goes.
    func close() {
        if fd != 1 { Glibc.close(fd) }
        if let partial { unlink(partial) }
    }
}
