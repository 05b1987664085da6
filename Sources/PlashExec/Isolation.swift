#if canImport(Glibc)
import Glibc
#endif
import CPlashShims
import PlashSystem

// --isolate: a container that cannot reach the host through what the default mode
// shares. Its own PID namespace and /proc (no host process to walk into through
// /proc/PID/root or /proc/PID/ns), a /dev of a few harmless devices, the host's /sys
// read-only, a private /tmp, no home, only the capabilities a package manager needs,
// no_new_privs and the default seccomp filter. Root inside is still the host's root to
// what it is given (no user namespace: the image's files and the binds keep their
// owners), so nothing it writes may carry privilege out: it makes no device nodes, sets
// no set-id bits or file capabilities, and device nodes it finds do not open.
// docs/plash-exec.md lists what it shares, and why.

/// What an isolated container binds from the host, in mount order: the few devices
/// of its /dev, empty files over what in /proc tells of the host's memory and keys,
/// /sys read-only, the name service files read-only, then the caller's own binds.
/// They go through mountShared, after mountIsolatedFileSystems made /proc and /dev.
public func isolatedMounts(_ plan: ExecPlan, hostHas: (String) -> Bool) -> [Bind] {
    minimalDevices(hostHas: hostHas)
        + isolatedEmptyPaths.filter(hostHas).map { Bind("/dev/null", $0) }
        + isolatedReadOnlyHostPaths.map { Bind($0, $0, readOnly: true) }
        + isolatedNameServiceFiles.filter(hostHas).map { Bind($0, $0, readOnly: true) }
        + plan.binds.map { var bind = $0; bind.noDevices = true; return bind }
}

/// The file systems an isolated container gets of its own instead of the host's:
/// /proc of its PID namespace, with what changes the host's kernel read-only; a tmpfs
/// /tmp. (Its /dev is --dev's, below.)
public func mountIsolatedFileSystems(into root: RootMount) throws {
    // A device node of the image (or one a --cap-add MKNOD container makes) must not
    // open a host disk: devices work only where /dev binds them.
    try check(plash_mount_set_nodev_nosuid(root.fd, 0), "make nodev", root.path)
    try mountFileSystem("proc", at: "/proc", in: root, flags: MS_NOSUID | MS_NODEV | MS_NOEXEC)
    try protectProcfs(in: root)
    try mountFileSystem("tmpfs", at: "/tmp", in: root, flags: MS_NOSUID | MS_NODEV, options: "mode=1777")
}

/// --dev (and --isolate): a tmpfs /dev with its own devpts and /dev/shm, and mount
/// points for the devices that minimalDevices binds into it.
public func mountMinimalDev(into root: RootMount) throws {
    // nodev: each device bound into it is a mount of its own, with the host's flags.
    try mountFileSystem("tmpfs", at: "/dev", in: root, flags: MS_NOSUID | MS_NODEV | MS_NOEXEC, options: "mode=0755")
    try populateDev(in: root)
}

/// The binds of the host's harmless devices into that /dev.
public func minimalDevices(hostHas: (String) -> Bool) -> [Bind] {
    isolatedDevices.filter { hostHas("/dev/" + $0) }.map { Bind("/dev/" + $0, "/dev/" + $0) }
}

/// The devices an isolated /dev binds from the host's.
let isolatedDevices = ["null", "zero", "full", "random", "urandom", "tty"]

/// What goes into the new /dev: mount points for the devices (mountShared creates
/// nothing outside the image's own file system), its own devpts and a tmpfs /dev/shm,
/// and the usual links.
func populateDev(in root: RootMount) throws {
    let dev = try openOrCreate("/dev", in: root.fd, directory: true)
    defer { close(dev) }
    for name in isolatedDevices where access("/dev/" + name, F_OK) == 0 {
        close(try check(openat(dev, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644), "create", "/dev/" + name))
    }
    let filesystems: [(type: String, name: String, flags: Int, options: String)] = [
        ("devpts", "pts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"),
        ("tmpfs", "shm", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777"),
    ]
    for filesystem in filesystems {
        try check(mkdirat(dev, filesystem.name, 0o755), "create", "/dev/" + filesystem.name)
        let target = try check(openat(dev, filesystem.name, plash_O_PATH | O_DIRECTORY | O_CLOEXEC), "open", "/dev/" + filesystem.name)
        defer { close(target) }
        try check(Glibc.mount(filesystem.type, procPath(target), filesystem.type, UInt(filesystem.flags), filesystem.options),
                  "mount \(filesystem.type) on", "/dev/" + filesystem.name)
    }
    let links = [("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                 ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")]
    for (name, target) in links {
        try check(symlinkat(target, dev, name), "create symlink", "/dev/" + name)
    }
}

/// What an isolated container's /proc tells of the host's memory, keys and scheduler:
/// /dev/null is bound over each that the host has (Docker's maskedPaths).
public let isolatedEmptyPaths = ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug",
                                 "/proc/latency_stats"]

/// What /proc offers to change the host's kernel (Docker's readonlyPaths): a root
/// container without user namespace is the host's root to these files.
public let isolatedReadOnlyProcPaths = ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"]

/// The host's file systems an isolated container sees read-only, cgroups included.
public let isolatedReadOnlyHostPaths = ["/sys"]

/// The host's name service files, read-only where the host has them.
public let isolatedNameServiceFiles = ["/etc/resolv.conf", "/etc/hosts"]

/// isolatedReadOnlyProcPaths, bound read-only from the new /proc itself.
func protectProcfs(in root: RootMount) throws {
    for path in isolatedReadOnlyProcPaths where exists(path, in: root.fd) {
        let target = try openOrCreate(path, in: root.fd, directory: true)
        defer { close(target) }
        try bind(procPath(target), onto: target, path: path)
        let mounted = try openOrCreate(path, in: root.fd, directory: true)
        defer { close(mounted) }
        try makeReadOnly(mounted, path: path)
    }
}

/// A new file system of `type` at `path` inside the root, created when missing.
func mountFileSystem(_ type: String, at path: String, in root: RootMount, flags: Int, options: String? = nil) throws {
    let target = try openOrCreate(path, in: root.fd, directory: true)
    defer { close(target) }
    try check(Glibc.mount(type, procPath(target), type, UInt(flags), options), "mount \(type) on", path)
}

/// What a distribution's package manager needs as root (Docker's default set, without
/// NET_RAW): to own and chmod files, to become its users, to bind low ports. Not what
/// would let a file it writes to the host give privilege to whoever finds it there:
/// MKNOD (a node of the host's disk), SETFCAP (file capabilities), FSETID (a write
/// into a set-id file of a --bind would keep its bits).
public let packageManagerCapabilities: [Int32] = [
    0 /* CHOWN */, 1 /* DAC_OVERRIDE */, 3 /* FOWNER */, 5 /* KILL */, 6 /* SETGID */,
    7 /* SETUID */, 8 /* SETPCAP */, 10 /* NET_BIND_SERVICE */, 18 /* SYS_CHROOT */, 29 /* AUDIT_WRITE */,
]
