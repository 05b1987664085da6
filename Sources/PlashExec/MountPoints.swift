#if canImport(Glibc)
import Glibc
#endif
import CPlashShims
import PlashSystem

// A mount needs a file or directory to mount on. Where the image has none, one made in
// the writable layer would stay there: in a --persist directory (runb, runopts -d, a
// build step's layer) as an empty file or directory the program never wrote. So with
// --persist the missing ones are made in a layer of their own, a directory of the
// scratch tmpfs that joins the overlay as its topmost lower layer: the container sees
// them as before, the writable layer never does. An overlay of the image is mounted
// first and asked which are missing, then the container's, with that layer when some are.

/// A path the container mounts on, and whether a directory (else a file's bind).
public struct MountPoint: Equatable {
    public var path: String
    public var directory: Bool
}

/// Where the container mounts, in the order it does: /proc and /tmp of --isolate, /dev
/// of --dev, then `shared`. A path below a file system of the container's own (a new
/// procfs, /dev, /tmp, a --tmpfs) lies in that, not in the image; a --bind-try of a
/// missing source and the working directory inside the store are not mounted.
/// `sources` are openSources' for `shared`; `store` is the store's canonical path.
public func mountPoints(_ plan: ExecPlan, _ shared: [Bind], sources: [BindSource?], store: String?) -> [MountPoint] {
    var own = (plan.isolate ? ["/proc", "/tmp"] : []) + (plan.minimalDev ? ["/dev"] : [])
    var points = own.map { MountPoint(path: $0, directory: true) }
    for (mount, source) in zip(shared, sources) where !own.contains(where: { isPath(mount.destination, within: $0) }) {
        if mount.newProcfs || mount.newTmpfs {
            own.append(mount.destination)
            points.append(MountPoint(path: mount.destination, directory: true))
            continue
        }
        guard let source else { continue }
        if let store, mount.onlyWhereImageHasNone && isPath(source.path, within: store) { continue }
        var info = stat()
        guard fstat(source.fd, &info) == 0 else { continue }    // mountShared says why
        points.append(MountPoint(path: mount.destination, directory: (info.st_mode & S_IFMT) == S_IFDIR))
    }
    return points
}

/// Whether overlayfs stacks the mount points' layer on an image of `depth` layers. (An
/// image of 500 gets its mount points in the writable layer.)
func roomForMountPointLayer(_ depth: Int) -> Bool { StoreLayout.tooDeep(depth + 1) == nil }

/// While the image is mounted at `overlay`: makes the mount points it lacks in the
/// directory `mount-points` of its scratch tmpfs, to be its topmost lower layer when
/// mounted again. Returns their paths.
func makeMountPointLayer(_ points: [MountPoint], in scratch: Int32, overlay: String) throws -> [String] {
    try check(mkdirat(scratch, "mount-points", 0o755), "create scratch directory", "mount-points")
    let layer = try check(openat(scratch, "mount-points", O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open", "mount-points")
    defer { close(layer) }
    let image = try openDirectory(overlay, what: "overlay")
    defer { close(image) }
    return try makeMissingMountPoints(points, image: image, in: layer)
}

/// Makes in `layer` (an empty directory) each of `points` that the image at `image` (the
/// overlay's root) lacks, with what leads there: the image's directories on the way
/// with their owner, mode and times (the overlay shows a directory of its topmost
/// layer with that layer's), the missing ones as mountShared would create them. A
/// symlink of the image is followed as mountShared follows it (inside the image); a
/// dangling one is covered, as it would be replaced. Returns the paths of those made.
func makeMissingMountPoints(_ points: [MountPoint], image: Int32, in layer: Int32) throws -> [String] {
    guard let imagePath = readLink(procPath(image)) else { return [] }
    var rootInfo = stat()
    try check(fstat(image, &rootInfo), "open mount point", "/")
    // The layer's directories that stand for the image's, with the image's attributes.
    var copied: [(fd: Int32, path: String, from: stat)] = [(try check(dup(layer), "open mount point", "/"), "/", rootInfo)]
    defer { copied.forEach { close($0.fd) } }
    var made: [String] = []
    for point in points {
        guard let (existing, missing) = missingPart(of: point.path, in: image, named: imagePath) else { continue }
        var directory = try check(dup(layer), "open mount point", "/")
        defer { close(directory) }
        var walked = ""
        func enter(_ name: String, from image: stat? = nil) throws {
            walked += "/" + name
            let created = mkdirat(directory, name, 0o755) == 0
            if !created && errno != EEXIST { throw PlashError.system("create mount point", walked) }
            let next = try check(openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC),
                                 "open mount point", walked)
            close(directory)
            directory = next
            if created, let image { copied.append((try check(dup(next), "open mount point", walked), walked, image)) }
        }
        for name in existing.split(separator: "/").map(String.init) {
            let inImage = try check(plash_open_in_root(image, walked + "/" + name, plash_O_PATH | O_DIRECTORY | O_CLOEXEC, 0),
                                    "open mount point", walked + "/" + name, needs: .openat2)
            var info = stat()
            let statted = fstat(inImage, &info)
            close(inImage)
            try check(statted, "open mount point", walked + "/" + name)
            try enter(name, from: info)
        }
        // What the image lacks, as mountShared would have made it in the writable layer.
        for name in missing.dropLast() { try enter(name) }
        if point.directory {
            try enter(missing[missing.count - 1])
        } else {
            walked += "/" + missing[missing.count - 1]
            close(try check(openat(directory, missing[missing.count - 1], O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644),
                            "create mount point", walked))
        }
        made.append(point.path)
    }
    guard !made.isEmpty else { return [] }
    // Last: creating entries changes a directory's times.
    for (fd, path, info) in copied {
        // An owner this user namespace does not map (another user's image, seen as
        // nobody) cannot be given: the directory stays this user's, as one made in the
        // writable layer would be.
        if fchown(fd, info.st_uid, info.st_gid) == -1 && errno != EINVAL { throw PlashError.system("chown mount point", path) }
        try check(fchmod(fd, info.st_mode & 0o7777), "chmod mount point", path)
        try check(futimens(fd, [info.st_atim, info.st_mtim]), "set the times of mount point", path)
    }
    return made
}

/// For a path the image lacks: the image's path of the last directory that leads there
/// (symlinks followed inside the image), and the names below it that are missing. nil
/// when the path exists, or cannot be made (a file on the way, `..` in what is missing:
/// mountShared then says why).
func missingPart(of path: String, in image: Int32, named imagePath: String) -> (String, [String])? {
    let probe = plash_open_in_root(image, path, plash_O_PATH | O_CLOEXEC, 0)
    if probe >= 0 { close(probe); return nil }
    guard errno == ENOENT else { return nil }
    let names = path.split(separator: "/").map(String.init)
    for count in stride(from: names.count - 1, through: 0, by: -1) {
        let prefix = "/" + names[..<count].joined(separator: "/")
        let fd = plash_open_in_root(image, prefix, plash_O_PATH | O_DIRECTORY | O_CLOEXEC, 0)
        if fd == -1 {
            if errno == ENOENT { continue }
            return nil
        }
        defer { close(fd) }
        let missing = Array(names[count...])
        guard !missing.contains("..") && !missing.contains("."), let full = readLink(procPath(fd)),
              isPath(full, within: imagePath) else { return nil }
        let existing = imagePath == "/" ? full : String(full.dropFirst(imagePath.count))
        return (existing, missing)
    }
    return nil
}
