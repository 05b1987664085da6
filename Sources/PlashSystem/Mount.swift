#if canImport(Glibc)
import Glibc
#endif
import CPlashShims

public func mount(_ source: String, on target: String, type: String? = nil,
                  flags: UInt = 0, options: String? = nil, what: Step) throws {
    let result = Glibc.mount(source, target, type, flags, options)
    try check(result, what, target)
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
public func bind(_ source: String, onto target: Int32, path: String) throws {
    try check(Glibc.mount(source, procPath(target), nil, UInt(MS_BIND | MS_REC), nil),
              "bind \(source) on", path)
}

public func makeReadOnly(_ mount: Int32, path: String) throws {
    try check(plash_mount_set_readonly(mount, 1), "make read-only", path)
}

/// Make the directory `newRoot` (a mount point) the root of this mount namespace and
/// detach the old root. pivot_root(".", ".") stacks the old root on top of the new one,
/// so no directory for it is needed inside the image (see pivot_root(2), NOTES).
public func pivotRoot(to newRoot: Int32, path: String) throws {
    try check(fchdir(newRoot), "chdir", path)
    try check(plash_pivot_root(".", "."), "pivot_root to", path)
    try check(umount2(".", Int32(MNT_DETACH)), "detach old root", "")
    try check(chdir("/"), "chdir", "/")
}
