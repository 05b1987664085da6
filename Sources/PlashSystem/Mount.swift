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

/// Mounts an overlay of `lowers` (open directories, top first) on `target`, with an
/// upper and a work directory when given. The layers are passed by descriptor, one by
/// one (plash_mount_overlay), which costs the same for each however deep the image.
/// Kernels before 6.13 take layers only by name (and PLASH_OVERLAY=lowerdir): there every directory is named
/// relative to /proc/self/fd ("7", "9/upper"), from there as the working directory
/// for a moment: the option string has room for 4096 bytes, and `/proc/self/fd/N` for
/// each layer would fill it at about 229 layers, short of the 500 that overlayfs
/// stacks. Names by descriptor also keep the layers immune to what is mounted over
/// their paths.
public func mountOverlay(_ label: String, on target: String, lowers: [Int32], upper: String? = nil,
                         work: String? = nil, userxattr: Bool = false, flags: UInt = 0) throws {
    if let tooDeep = StoreLayout.tooDeep(lowers.count) { throw PlashError.failure(tooDeep) }
    let mountPoint = try openDirectory(target, what: .mountOverlay)
    defer { close(mountPoint) }
    let previous = try openDirectory(".", what: "open working directory")
    defer {
        fchdir(previous)
        close(previous)
    }
    try check(chdir("/proc/self/fd"), "chdir", "/proc/self/fd")
    // PLASH_OVERLAY=lowerdir takes the older kernels' way here too.
    if environment("PLASH_OVERLAY") != "lowerdir" {
        let mounted = lowers.withUnsafeBufferPointer {
            plash_mount_overlay(label, $0.baseAddress, Int32($0.count), upper, work, userxattr ? 1 : 0, flags, mountPoint)
        }
        if mounted == 0 { return }
        if mounted == -1 { throw PlashError.system(.mountOverlay, target) }
    }
    var options = "lowerdir=" + lowers.map { String($0) }.joined(separator: ":")
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
