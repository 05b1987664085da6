#if canImport(Glibc)
import Glibc
#endif
import CPlashShims
import PlashSystem

/// One line of `plash doctor`: what was checked, what was found, and the exact fix.
public struct Finding: Equatable {
    public enum Level: Equatable {
        case ok
        case warning    // a feature will not work (limits, apt in builds); containers still run
        case failure    // plash cannot build or run containers for this user
    }
    public var level: Level
    public var subject: String
    public var detail: String
    public var fix: String? = nil

    public init(_ level: Level, _ subject: String, _ detail: String, fix: String? = nil) {
        self.level = level
        self.subject = subject
        self.detail = detail
        self.fix = fix
    }
}

/// What plash needs on this machine, for this user. `probe` mounts an overlay in fresh
/// namespaces in a child process (it must not change plash's own) and returns its
/// error line, nil when it worked.
public func doctorFindings(store: Store, probe: () -> String?) -> [Finding] {
    let uid = geteuid()
    let user = userName(uid) ?? String(uid)
    var findings: [Finding] = []
    do {
        findings.append(Finding(.ok, "plash-exec", try plashExecPath()))
    } catch {
        findings.append(Finding(.failure, "plash-exec", "not beside plash nor on PATH",
                                fix: "install both with scripts/install, or put plash-exec on PATH"))
    }
    let asRoot = mountsAsRoot()
    // Root of another user namespace mounts as an ordinary user does (Container.swift).
    var name = utsname()
    uname(&name)
    let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    findings.append(kernelFinding(release: release, root: asRoot && inFirstUserNamespace()))
    if !asRoot { findings += userNamespaceFindings() }
    if let error = probe() {
        // The error's own advice, in parentheses, is the fix where plash-exec knows one.
        findings.append(Finding(.failure, "overlay in a mount namespace", error,
                                fix: error.hasSuffix(")") ? nil : asRoot ? "see dmesg" : "see the user namespace lines above; or install fuse-overlayfs"))
    } else {
        findings.append(Finding(.ok, "overlay in a mount namespace", asRoot ? "works" : "works in a user namespace"))
    }
    if uid != 0 { findings += subordinateIDFindings(user: user, uid: uid, gid: getegid()) }
    findings.append(cgroupFinding(user: user))
    findings += storeFindings(store.path)
    findings.append(seccompFinding())
    return findings
}

/// "6.1.0-13-amd64" -> (6, 1).
public func kernelVersion(_ release: String) -> (major: Int, minor: Int)? {
    let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
    return numbers.count == 2 ? (numbers[0], numbers[1]) : nil
}

/// What Linux `release` lacks of what plash needs (docs/install.md, "Kernels"): openat2
/// for everything, overlayfs for ordinary users, a recursive mount_setattr for --isolate
/// and read-only binds. `root`: root of the first user namespace.
public func kernelFinding(release: String, root: Bool) -> Finding {
    guard let version = kernelVersion(release) else { return Finding(.ok, "kernel", "Linux \(release)") }
    func before(_ call: KernelCall) -> Bool {
        kernelVersion(call.since).map { (version.major, version.minor) < ($0.major, $0.minor) } ?? false
    }
    if before(.openat2) {
        return Finding(.failure, "kernel", "Linux \(release) has no openat2: plash needs Linux \(KernelCall.openat2.since) or later",
                       fix: "boot Linux \(KernelCall.openat2.since) or later")
    }
    guard !root, (version.major, version.minor) < (5, 11) else {
        if before(.mountSetattr) {
            return Finding(.warning, "kernel", "Linux \(release) has no mount_setattr: --isolate, --ro-bind and a build's read-only binds fail where mounts lie below them",
                           fix: "boot Linux \(KernelCall.mountSetattr.since) or later")
        }
        return Finding(.ok, "kernel", "Linux \(release)")
    }
    // Before 5.11 overlayfs refuses ordinary users; plash-exec then uses fuse-overlayfs.
    if access("/usr/bin/fuse-overlayfs", X_OK) == 0 && access("/dev/fuse", F_OK) != 0 {
        return Finding(.failure, "kernel", "Linux \(release) refuses overlayfs to ordinary users, and /dev/fuse is missing",
                       fix: fuseDeviceMissing)
    }
    if access("/usr/bin/fuse-overlayfs", X_OK) == 0 {
        return Finding(.ok, "kernel", "Linux \(release): overlays through fuse-overlayfs (kernel overlayfs for users needs 5.11)")
    }
    return Finding(.failure, "kernel", "Linux \(release) refuses overlayfs to ordinary users (5.11 or later needed)",
                   fix: "apt-get install fuse-overlayfs (as root), or boot Linux 5.11 or later")
}

/// The switches that turn user namespaces off for ordinary users (and root without
/// CAP_SYS_ADMIN), and a seccomp filter around plash that refuses them.
func userNamespaceFindings() -> [Finding] {
    var findings = userNamespaceSwitchesOff().map { Finding(.failure, "user namespaces", "disabled: " + $0.detail, fix: $0.fix) }
    if underSeccompFilter() {
        findings.append(Finding(.warning, "seccomp", "a seccomp filter confines plash here: if it refuses namespaces (plash --isolate, docker's default profile), no container starts",
                                fix: "run plash outside it, or that container without the filter: plash run without --isolate, docker run --security-opt seccomp=unconfined"))
    }
    if findings.isEmpty { findings.append(Finding(.ok, "user namespaces", "enabled")) }
    return findings
}

/// newuidmap/newgidmap and the user's ranges: without them a build's package manager
/// cannot chown to other users (apt's _apt, files of other owners).
func subordinateIDFindings(user: String, uid: uid_t, gid: gid_t) -> [Finding] {
    var findings: [Finding] = []
    if idMapHelper("newuidmap") == nil || idMapHelper("newgidmap") == nil {
        findings.append(Finding(.warning, "newuidmap/newgidmap", "missing: only your own id is mapped; apt and other package managers in builds fail",
                                fix: "as root: apt-get install uidmap"))
    }
    let (uids, gids) = subordinateRanges(uid: uid, gid: gid)
    if let uids, let gids {
        findings.append(Finding(.ok, "subordinate ids", "\(user): \(uids.count) uids from \(uids.start), \(gids.count) gids from \(gids.start)"))
    } else {
        let missing = [uids == nil ? "/etc/subuid" : nil, gids == nil ? "/etc/subgid" : nil].compactMap { $0 }
        findings.append(Finding(.warning, "subordinate ids", "none for \(user) in \(missing.joined(separator: " and ")): apt and other package managers in builds fail",
                                fix: "as root: \(addSubordinateIDs(user)) (a range no other user has)"))
    }
    return findings
}

/// The usermod command that gives `user` 65536 subordinate ids that no line of
/// /etc/subuid or /etc/subgid holds yet.
func addSubordinateIDs(_ user: String) -> String {
    let taken = ["/etc/subuid", "/etc/subgid"].flatMap { file in
        ((try? readFile(file, what: "read")).map { subordinateRanges(String(decoding: $0, as: UTF8.self)) }) ?? []
    }
    let start = freeSubordinateRange(taken: taken)
    let range = "\(start)-\(start + subordinateCount - 1)"
    return "usermod --add-subuids \(range) --add-subgids \(range) \(user)"
}

/// As useradd gives each user: 65536 ids, from 100000 up (login.defs' SUB_UID_MIN).
let subordinateCount: UInt32 = 65536

/// The ranges of /etc/subuid or /etc/subgid text (`NAME:START:COUNT` lines).
public func subordinateRanges(_ text: String) -> [(start: UInt32, count: UInt32)] {
    text.split(separator: "\n").compactMap { line in
        let fields = line.split(separator: ":", omittingEmptySubsequences: false)
        guard fields.count == 3, let start = UInt32(fields[1]), let count = UInt32(fields[2]), count > 0 else { return nil }
        return (start, count)
    }
}

/// The lowest start from 100000 of 65536 ids that none of `taken` overlaps, as useradd
/// picks one: a range another user holds would share their files' owners.
public func freeSubordinateRange(taken: [(start: UInt32, count: UInt32)]) -> UInt32 {
    var start: UInt64 = 100_000
    for range in taken.sorted(by: { $0.start < $1.start }) {
        let end = UInt64(range.start) + UInt64(range.count)
        if UInt64(range.start) < start + UInt64(subordinateCount) && end > start { start = end }
    }
    return UInt32(clamping: start)
}

/// Which of --memory, --pids, --cpus work: root, or a cgroup subtree delegated to the user.
func cgroupFinding(user: String) -> Finding {
    let mountinfo = (try? readFile("/proc/self/mountinfo", what: "read")).map { String(decoding: $0, as: UTF8.self) }
    let delegate = cgroupDelegation(user: user, mounted: mountinfo.flatMap { CgroupHierarchy(mountinfo: $0) })
    let hierarchy: CgroupHierarchy
    do {
        hierarchy = try CgroupHierarchy.current()
    } catch {
        return Finding(.warning, "cgroups", "no cgroup subtree is delegated to \(user): --memory, --pids, --cpus and --cgroup fail",
                       fix: geteuid() == 0 ? "mount a cgroup file system" : delegate)
    }
    // Where plash/ is made: the parent of each of its directories.
    for parent in hierarchy.directories(nil).map({ splitLast($0).0 }) {
        var info = statvfs()
        if statvfs(parent, &info) == 0 && info.f_flag & UInt(ST_RDONLY) != 0 {
            return Finding(.warning, "cgroups", "\(parent) is read-only: --memory, --pids, --cpus and --cgroup fail", fix: cgroupsReadOnly)
        }
    }
    let version: String
    if case .legacy = hierarchy { version = "v1" } else { version = "v2" }
    let available = hierarchy.availableLimitControllers()
    let limits = ["memory": "--memory", "pids": "--pids", "cpu": "--cpus"]
    let missing = CgroupHierarchy.limitControllers.filter { !available.contains($0) }
    if missing.isEmpty { return Finding(.ok, "cgroups", "\(version): --memory, --pids, --cpus work") }
    let fix = geteuid() != 0 ? delegate : version == "v2"
        ? "as root: echo '+\(missing.joined(separator: " +"))' > /sys/fs/cgroup/cgroup.subtree_control"
        : "mount the v1 hierarchies of \(missing.joined(separator: ", "))"
    return Finding(.warning, "cgroups", "\(version): no \(missing.joined(separator: ", ")) controller for \(user): \(missing.map { limits[$0]! }.joined(separator: ", ")) fail",
                   fix: fix)
}

/// How root gives `user` a cgroup subtree of their own. systemd delegates through
/// user@.service; without it (/run/systemd/system is how sd_booted(3) tells), root makes
/// the user a cgroup and moves them in: on v2 one directory; on v1 (and a hybrid host,
/// whose controllers are v1's) one in each hierarchy of plash's controllers, as the v2
/// directory would not hold them.
func cgroupDelegation(user: String, mounted: CgroupHierarchy?) -> String {
    if access("/run/systemd/system", F_OK) == 0 {
        return "as root: systemctl edit user@.service, add [Service] Delegate=memory pids cpu, log in again"
    }
    if case .legacy(let mounts)? = mounted {
        let directories = Set(mounts.values).sorted().map { "\($0)/\(user)" }.joined(separator: " ")
        return "as root: mkdir \(directories) && chown -R \(user) \(directories), then move \(user)'s shell into each "
            + "(echo PID > cgroup.procs in each)"
    }
    var root = "/sys/fs/cgroup"
    if case .unified(let mount)? = mounted { root = mount }
    return "as root: mkdir \(root)/\(user) && chown -R \(user) \(root)/\(user), then move \(user)'s shell into it "
        + "(echo PID > \(root)/\(user)/cgroup.procs)"
}

/// The store (or the directory it will be created in) must be writable, on a
/// writable mount, with room for images.
func storeFindings(_ path: String) -> [Finding] {
    var existing = path
    while access(existing, F_OK) != 0 && existing != "/" { existing = splitLast(existing).0 }
    var file = stat()
    if stat(existing, &file) == 0 && (file.st_mode & S_IFMT) != S_IFDIR {
        return [Finding(.failure, "store", "\(path): \(existing) is not a directory",
                        fix: "remove it, or set PLASH_DATA to a directory")]
    }
    var info = statvfs()
    guard statvfs(existing, &info) == 0 else {
        return [Finding(.failure, "store", "\(path): \(String(cString: strerror(errno)))", fix: "set PLASH_DATA to a writable directory")]
    }
    if info.f_flag & UInt(ST_RDONLY) != 0 {
        return [Finding(.failure, "store", "\(path) is on a read-only mount (\(existing))",
                        fix: "set PLASH_DATA to a directory on a writable file system, or remount it read-write")]
    }
    if access(existing, W_OK) != 0 {
        return [Finding(.failure, "store", "\(path): \(existing) is not writable for this user",
                        fix: "set PLASH_DATA to a directory of your own, or chown -R \(geteuid()) \(existing) (as root)")]
    }
    if existing == path && !Store(path: path).isStore {
        return [Finding(.failure, "store", "\(path): not a plash store (no \(StoreLayout.markerName) file, and it holds other files)",
                        fix: "set PLASH_DATA to a new or empty directory")]
    }
    let free = Int64(info.f_bavail) * Int64(info.f_frsize)
    let place = existing == path ? path : "\(path) (not created yet)"
    if free < 1 << 30 {
        return [Finding(.warning, "store", "\(place): only \(humanSize(free)) free", fix: "free space there, or set PLASH_DATA elsewhere")]
    }
    return [Finding(.ok, "store", "\(place): \(humanSize(free)) free")]
}

func seccompFinding() -> Finding {
    let status = (try? readFile("/proc/self/status", what: "read")).map { String(decoding: $0, as: UTF8.self) } ?? ""
    if status.contains("\nSeccomp:") { return Finding(.ok, "seccomp", "supported: --seccomp works") }
    return Finding(.warning, "seccomp", "this kernel has no seccomp filters: --seccomp fails", fix: "a kernel with CONFIG_SECCOMP_FILTER")
}

/// Mounts an overlay as plash-exec does: a lower directory on the store's file system,
/// upper and work on a tmpfs, in new mount (and, for users, user) namespaces. Changes
/// this process's namespaces: run it in a child.
public func probeOverlay(in dir: String) throws {
    let uid = geteuid(), gid = getegid()
    // Decided as plash-exec decides (Container.swift).
    let asRoot = mountsAsRoot()
    if asRoot { try unshare(CLONE_NEWNS) } else { try enterUserNamespace(CLONE_NEWUSER | CLONE_NEWNS, uid: uid, gid: gid) }
    try stopMountPropagation()
    try mount("tmpfs", on: dir + "/scratch", type: "tmpfs", what: "mount tmpfs on")
    for sub in ["upper", "work"] { try check(mkdir(dir + "/scratch/" + sub, 0o755), "mkdir", dir + "/scratch/" + sub) }
    let userxattr = asRoot && !inFirstUserNamespace() ? ",userxattr" : ""
    try mount("overlay", on: dir + "/merged", type: "overlay",
              options: "lowerdir=\(dir)/lower,upperdir=\(dir)/scratch/upper,workdir=\(dir)/scratch/work" + userxattr, what: .mountOverlay)
}

/// Runs `plash doctor --probe-overlay DIR` (this binary) and returns its error line.
/// The lower directory lives beside the store, where image layers will.
public func overlayProbeError(store: Store) -> String? {
    var base = store.exists && access(store.tmp, W_OK) == 0 ? store.tmp : "/tmp"
    var template = Array((base + "/doctor-XXXXXX").utf8CString)
    guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
        return "cannot create a directory in \(base): \(String(cString: strerror(errno)))"
    }
    base = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    defer { try? removeTree(base) }
    for sub in ["lower", "scratch", "merged"] { mkdir(base + "/" + sub, 0o755) }
    let own = ownPath
    let output = base + "/error"
    guard let end = try? spawnAndWait([own, "doctor", "--probe-overlay", base],
                                      streams: Streams(stdin: .null, stdout: .null, stderr: .file(output, write: true))) else {
        return "cannot run \(own)"
    }
    if end.succeeded { return nil }
    let text = (try? readFile(output, what: "read")).map { String(decoding: $0, as: UTF8.self) } ?? ""
    let line = text.split(separator: "\n").first.map(String.init) ?? end.text
    return line.hasPrefix("plash: ") ? String(line.dropFirst(7)) : line
}
