#if canImport(Glibc)
import Glibc
#endif
import CPlashShims

/// What to do where /dev/fuse is missing (a container without the device): plash-exec's
/// advice and plash doctor's fix.
public let fuseDeviceMissing = "fuse-overlayfs needs /dev/fuse: as root, modprobe fuse; in a container, "
    + "give it the device, as docker run --device /dev/fuse does"

public func mount(_ source: String, on target: String, type: String? = nil,
                  flags: UInt = 0, options: String? = nil, what: Step) throws {
    let result = Glibc.mount(source, target, type, flags, options)
    try check(result, what, target)
}

/// An overlay's lower layers, top first. Layers that lie side by side in one directory,
/// as a store's files/ID do, are named in it, and only that directory is opened: the
/// kernel finds each layer by its name, where a descriptor of each would cost plash an
/// open and a close per layer (a tenth of a 500-layer start). Other layers are opened
/// one by one. Either way a layer is reached from what was opened before anything is
/// mounted: a mount stacked on `/` later hides none of them.
public final class LowerLayers {
    public let paths: [String]
    /// The directory the layers lie in, open, and their names there; or -1.
    public let directory: Int32
    /// The layers' descriptors: opened at once when they lie apart, else on demand
    /// (descriptors()), for what takes layers only by descriptor or path.
    private var opened: [Int32] = []

    /// What close() closes, when not all that this set opened (a set made by below()).
    private var owned: [Int32]? = nil

    public init(opening paths: [String]) throws {
        self.paths = paths
        let parent = paths.first.map { splitLast($0).0 }
        if let parent, paths.allSatisfy({ splitLast($0).0 == parent && LowerLayers.isName(splitLast($0).1) }) {
            directory = try openDirectory(parent, what: "layer")
        } else {
            directory = -1
            do {
                for path in paths { opened.append(try openDirectory(path, what: "layer")) }
            } catch {
                close()
                throw error
            }
        }
    }

    /// An entry's own name, which the kernel looks up as it is (`..` would leave the directory).
    static func isName(_ name: String) -> Bool { !name.isEmpty && name != "." && name != ".." }

    /// The layers' names, NUL after each, for plash_mount_overlay; nil when they lie apart.
    var names: [CChar]? {
        guard directory >= 0 else { return nil }
        var names: [CChar] = []
        for path in paths {
            names.append(contentsOf: splitLast(path).1.utf8.map { CChar(bitPattern: $0) })
            names.append(0)
        }
        return names
    }

    /// An open descriptor of each layer, top first, opened now if need be. Call it before
    /// mounting over a layer's path: the names are looked up again here.
    public func descriptors() throws -> [Int32] {
        if opened.count < paths.count {
            for path in paths.dropFirst(opened.count) {
                opened.append(try check(openat(directory, splitLast(path).1, plash_O_PATH | O_DIRECTORY | O_CLOEXEC),
                                        "layer", path))
            }
        }
        return opened
    }

    private init(paths: [String], descriptors: [Int32], owned: [Int32]) {
        self.paths = paths
        directory = -1
        opened = descriptors
        self.owned = owned
    }

    /// These layers below `top`, an open directory that `path` names in messages: a set
    /// passed by descriptor. Its close() closes `top` if it is `owning` it, and never
    /// the descriptors of these layers, which stay this set's.
    public func below(_ top: Int32, path: String, owning: Bool = false) throws -> LowerLayers {
        LowerLayers(paths: [path] + paths, descriptors: [top] + (try descriptors()), owned: owning ? [top] : [])
    }

    public func close() {
        if let owned {
            owned.forEach { Glibc.close($0) }
            self.owned = []
            return
        }
        opened.forEach { Glibc.close($0) }
        opened = []
        if directory >= 0 { Glibc.close(directory) }
    }
}

/// Mounts an overlay of `lowers` on `target`, with an upper and a work directory
/// (absolute paths) when given. The layers are passed one by one, by name or by
/// descriptor (plash_mount_overlay), which costs the same for each however deep the
/// image. Kernels before 6.8 take layers only by name in one option string (and
/// PLASH_OVERLAY=lowerdir): there every layer is named by its descriptor relative to
/// /proc/self/fd ("7"), from there as the working directory for a moment: the option
/// string has room for 4096 bytes, and `/proc/self/fd/N` for each layer would fill it
/// at about 229 layers, short of the 500 that overlayfs stacks.
public func mountOverlay(_ label: String, on target: String, lowers: LowerLayers, upper: String? = nil,
                         work: String? = nil, userxattr: Bool = false, flags: UInt = 0) throws {
    if let tooDeep = StoreLayout.tooDeep(lowers.paths.count) { throw PlashError.failure(tooDeep) }
    let mountPoint = try openDirectory(target, what: .mountOverlay)
    defer { close(mountPoint) }
    let previous = try openDirectory(".", what: "open working directory")
    defer {
        fchdir(previous)
        close(previous)
    }
    // PLASH_OVERLAY=lowerdir takes the older kernels' way here too.
    if environment("PLASH_OVERLAY") != "lowerdir" {
        // Names are looked up from the working directory: their directory, for a moment.
        let names = lowers.names
        if names != nil { try check(fchdir(lowers.directory), "chdir", splitLast(lowers.paths[0]).0) }
        let descriptors = names == nil ? try lowers.descriptors() : []
        var failed: Int32 = -1
        // An empty array's buffer need not be NULL: names says which way.
        let mounted = descriptors.withUnsafeBufferPointer { fds in
            (names ?? []).withUnsafeBufferPointer { buffer in
                plash_mount_overlay(label, fds.baseAddress, names == nil ? nil : buffer.baseAddress,
                                    Int32(lowers.paths.count), upper, work, userxattr ? 1 : 0, flags, mountPoint, &failed)
            }
        }
        if mounted == 0 { return }
        // What an open of the layer would have met.
        if mounted == -1 && failed >= 0 && [ENOENT, ENOTDIR, EACCES, ELOOP].contains(errno) {
            throw PlashError.system("layer", lowers.paths[Int(failed)])
        }
        if mounted == -1 { throw PlashError.system(.mountOverlay, target) }
    }
    let descriptors = try lowers.descriptors()
    try check(chdir("/proc/self/fd"), "chdir", "/proc/self/fd")
    var options = "lowerdir=" + descriptors.map { String($0) }.joined(separator: ":")
    if let upper, let work { options += ",upperdir=\(upper),workdir=\(work)" }
    // In a user namespace overlayfs keeps its whiteouts and metadata in user.* xattrs,
    // which an unprivileged user may write.
    if userxattr { options += ",userxattr" }
    try check(Glibc.mount(label, procPath(mountPoint), "overlay", flags, options), .mountOverlay, target)
}

/// Every mount below `/` stops propagating to the host: nothing this process mounts
/// from now on is seen outside, and the host's mount table never changes. Slave,
/// not private, so that mounts the host makes later (a USB stick under /home) still
/// reach the container.
public func stopMountPropagation() throws {
    try check(Glibc.mount("none", "/", nil, UInt(MS_REC | MS_SLAVE), nil), "make / slave", "")
}

/// Bind `source` (a host path) onto the open mount point `target`, with everything
/// mounted below it: a non-recursive bind of a tree with locked submounts fails in a
/// user namespace, and /dev without /dev/pts is of little use.
/// `source` is the path to mount (often /proc/self/fd/N); `named`, when given, is what
/// an error calls it.
public func bind(_ source: String, named: String? = nil, onto target: Int32, path: String) throws {
    try check(Glibc.mount(source, procPath(target), nil, UInt(MS_BIND | MS_REC), nil),
              "bind \(named ?? source) on", path)
}

/// The mount at `mount` and every mount below it read-only.
public func makeReadOnly(_ mount: Int32, path: String) throws {
    try setRecursively(mount, path: path, "make read-only", plash_mount_set_readonly)
}

/// Device nodes on the mount at `mount` and every mount below it do not open, and
/// set-id bits there give nothing.
public func makeNoDevices(_ mount: Int32, path: String) throws {
    try setRecursively(mount, path: path, "make nodev", plash_mount_set_nodev_nosuid)
}

/// Before Linux 5.12 (no mount_setattr) mount(2) changes one mount at a time: that is
/// enough when nothing is mounted below this one, and otherwise one line names the
/// kernel it takes.
func setRecursively(_ mount: Int32, path: String, _ step: Step, _ set: (Int32, Int32) -> Int32) throws {
    if set(mount, 1) == 0 { return }
    let failed = errno
    guard failed == ENOSYS, !hasMountsBelow(mount) else {
        throw PlashError.system(step, path, errno: failed).needing(.mountSetattr)
    }
    try check(set(mount, 0), step, path)
}

/// Whether anything is mounted below the mount that the open file `fd` lies on (true
/// when that cannot be read).
func hasMountsBelow(_ fd: Int32) -> Bool {
    guard let info = try? readFile("/proc/self/fdinfo/\(fd)", what: "read"),
          let line = String(decoding: info, as: UTF8.self).split(separator: "\n").first(where: { $0.hasPrefix("mnt_id:") }),
          let id = Int(line.dropFirst("mnt_id:".count).trimmingPrefix(while: { $0 == " " || $0 == "\t" })),
          let table = MountEntry.table() else { return true }
    return table.contains { $0.parent == id && $0.id != id }
}

/// Make the directory `newRoot` (a mount point) the root of this mount namespace and
/// detach the old root. pivot_root(".", ".") stacks the old root on top of the new one,
/// so no directory for it is needed inside the image (see pivot_root(2), NOTES). A
/// `scratch` mount stacked on the old root's `/` comes along on top of it and would be
/// all that a detach of "." takes, leaving the host's root reachable as `/..`: it is
/// detached first, through its handle, named in the host's /proc, opened before
/// pivot_root (the container's own /proc may be anything a --bind put there).
public func pivotRoot(to newRoot: Int32, path: String, scratch: Int32? = nil) throws {
    let proc = try check(open("/proc", plash_O_PATH | O_DIRECTORY | O_CLOEXEC), "open", "/proc")
    defer { close(proc) }
    try check(fchdir(newRoot), "chdir", path)
    try check(plash_pivot_root(".", "."), "pivot_root to", path)
    if let scratch {
        try check(fchdir(proc), "chdir", "/proc")
        try check(umount2("self/fd/\(scratch)", Int32(MNT_DETACH)), "detach scratch tmpfs", "")
        try check(fchdir(newRoot), "chdir", path)
    }
    try check(umount2(".", Int32(MNT_DETACH)), "detach old root", "")
    try check(chdir("/"), "chdir", "/")
}
