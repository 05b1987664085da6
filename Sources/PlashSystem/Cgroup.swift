#if canImport(Glibc)
import Glibc
#endif

/// Limits for a container's cgroup; nil means unlimited.
public struct ResourceLimits: Equatable, Sendable {
    public var memory: UInt64? = nil     // bytes, swap included where the kernel allows
    public var pids: Int? = nil
    public var cpus: Double? = nil       // 0.5 = half of one core

    public init(memory: UInt64? = nil, pids: Int? = nil, cpus: Double? = nil) {
        self.memory = memory
        self.pids = pids
        self.cpus = cpus
    }

    public var isEmpty: Bool { memory == nil && pids == nil && cpus == nil }
}

/// How this host mounts cgroups: one v2 hierarchy (most hosts today), or v1
/// hierarchies, one per controller, maybe beside a v2 mount without them (hybrid).
public enum CgroupHierarchy: Equatable, Sendable {
    case unified(String)
    case legacy([String: String])     // controller -> mount point

    /// The controllers plash uses. On v1, cpuacct holds the CPU time used.
    static let controllers = ["memory", "pids", "cpu", "cpuacct"]

    /// The controllers of the limits: memory for --memory, pids for --pids, cpu for --cpus.
    public static let limitControllers = ["memory", "pids", "cpu"]

    /// Those of `limitControllers` that plash/ may use here: on v1 each with a mounted
    /// hierarchy; on v2 those its parent hands down (plash/cgroup.controllers, or before
    /// plash/ exists the parent's cgroup.subtree_control). `plash doctor` asks this.
    public func availableLimitControllers() -> [String] {
        switch self {
        case .legacy(let mounts):
            return Self.limitControllers.filter { mounts[$0] != nil }
        case .unified(let base):
            let words = (try? readWords(base + "/plash/cgroup.controllers")) ?? (try? readWords(base + "/cgroup.subtree_control")) ?? []
            return Self.limitControllers.filter(words.contains)
        }
    }

    public init?(mountinfo: String) {
        var legacy: [String: String] = [:]
        var unified: String? = nil
        for entry in MountEntry.parse(mountinfo) {
            if entry.fileSystem == "cgroup2" { unified = unified ?? entry.mountPoint }
            if entry.fileSystem == "cgroup" {
                for option in entry.superOptions where Self.controllers.contains(option) {
                    legacy[option] = entry.mountPoint
                }
            }
        }
        if !legacy.isEmpty { self = .legacy(legacy) } else if let unified { self = .unified(unified) } else { return nil }
    }

    /// This host's hierarchy, with the directories plash/ lives in: on v2, in a service
    /// whose manager delegated its cgroup (systemd's Delegate=yes) or an ordinary
    /// user's service, that cgroup, so `systemctl stop` and `status` see the container's
    /// processes; else the top of each mount for root; for an ordinary user, the highest
    /// ancestor of its own cgroup that it owns, a subtree delegated to it (systemd's
    /// user@UID.service).
    public static func current() throws -> CgroupHierarchy {
        let mountinfo = String(decoding: try readFile("/proc/self/mountinfo", what: "read"), as: UTF8.self)
        guard let hierarchy = CgroupHierarchy(mountinfo: mountinfo) else {
            throw PlashError.system("find cgroup file system in", "/proc/self/mountinfo", errno: ENOENT)
        }
        let own = String(decoding: try readFile("/proc/self/cgroup", what: "read"), as: UTF8.self)
        if case .unified(let mount) = hierarchy, let path = ownPath(own, controller: ""), path != "/" {
            if isDelegated(mount + path) { return .unified(mount + path) }
            // A user's manager (systemd 252) marks no cgroup it delegates; but each
            // cgroup it makes is the user's, so the unit's own is theirs to divide.
            if geteuid() != 0 && path.hasSuffix(".service") && isOwned(mount + path) { return .unified(mount + path) }
            // Moved out to plash/ at the top, the container would leave its unit: the
            // manager's stop would not kill it, nor its status show it.
            if path.hasSuffix(".service") {
                throw PlashError.failure("cgroup \(path): the service manager did not delegate it")
                    .advising("add Delegate=yes to the [Service] section of \(splitLast(path).1)")
            }
        }
        if geteuid() == 0 { return hierarchy }
        switch hierarchy {
        case .unified(let mount):
            return .unified(try delegatedBase(mount: mount, own: own, controller: ""))
        case .legacy(let mounts):
            var bases: [String: String] = [:]
            for (controller, mount) in mounts {
                bases[controller] = try delegatedBase(mount: mount, own: own, controller: controller)
            }
            return .legacy(bases)
        }
    }

    /// The directories of `plash/NAME` (NAME nil: of `plash` itself), one per v1 mount.
    public func directories(_ name: String?) -> [String] {
        let suffix = "/plash" + (name.map { "/" + $0 } ?? "")
        switch self {
        case .unified(let root): return [root + suffix]
        case .legacy(let mounts): return Set(mounts.values).sorted().map { $0 + suffix }
        }
    }
}

/// What to do where cgroups are mounted read-only (docker's and podman's containers):
/// plash-exec's advice and plash doctor's fix.
public let cgroupsReadOnly = "cgroups are read-only here, as in most containers: run without --memory, --pids, --cpus "
    + "and --cgroup, or where cgroups are writable"

/// The cgroup `plash/NAME`. plash creates and changes cgroups only below `plash/`.
public struct Cgroup {
    public let name: String
    public let hierarchy: CgroupHierarchy

    public init(_ name: String, hierarchy: CgroupHierarchy) {
        self.name = name
        self.hierarchy = hierarchy
    }

    public var directories: [String] { hierarchy.directories(name) }

    /// The file whose `oom_kill N` line counts the processes the memory limit killed.
    public var oomCounter: String? {
        switch hierarchy {
        case .unified(let root): return root + "/plash/" + name + "/memory.events"
        case .legacy(let mounts): return mounts["memory"].map { $0 + "/plash/" + name + "/memory.oom_control" }
        }
    }

    /// Creates the cgroup, or takes it over from an earlier instance after killing
    /// whatever that left running, sets the limits and moves this process in.
    public func enter(limits: ResourceLimits) throws {
        // `plash clean` removes empty plash cgroups; one may vanish before we are in
        // it (ENOENT, or ENODEV when writing to a removed cgroup's file): start over.
        for attempt in 1...5 {
            do {
                try create(limits: limits)
                try killAll()
                try apply(limits)
                for dir in joined(limits) {
                    try writeFile(dir + "/cgroup.procs", "\(getpid())")
                }
                return
            } catch let error as PlashError where attempt < 5 && (error.errno == ENOENT || error.errno == ENODEV) {
                continue
            }
        }
    }

    func create(limits: ResourceLimits) throws {
        var needed: [String] = []
        if limits.memory != nil { needed.append("memory") }
        if limits.pids != nil { needed.append("pids") }
        if limits.cpus != nil { needed.append("cpu") }
        switch hierarchy {
        case .legacy(let mounts):
            if let missing = needed.first(where: { mounts[$0] == nil }) {
                throw PlashError.system("cgroup controller \(missing)", "(no v1 hierarchy mounted)", errno: ENOENT)
            }
            for dir in joined(limits) {
                try makeDirectory(splitLast(dir).0)
                try makeDirectory(dir)
            }
        case .unified(let root):
            let plash = root + "/plash"
            try makeDirectory(plash)
            if try isOwnCgroup(root) {
                // A delegated service's cgroup holds this very process, and v2 enables a
                // controller for children only in a cgroup without processes of its own:
                // move into plash/NAME first. Another process of the service left there
                // (a shell that did not exec) makes the write fail with EBUSY.
                try makeDirectory(directories[0])
                try writeFile(directories[0] + "/cgroup.procs", "\(getpid())")
                try enableForChildren(needed, in: root)
            }
            // v2 hands a controller to children only when the parent enables it. plash
            // enables them in its own plash/ and never touches the root's settings.
            let available = try readWords(plash + "/cgroup.controllers")
            if let missing = needed.first(where: { !available.contains($0) }) {
                throw PlashError.system("cgroup controller \(missing)", "(not enabled in \(root)/cgroup.subtree_control)",
                                   errno: ENOENT)
            }
            try enableForChildren(CgroupHierarchy.limitControllers, in: plash)
            try makeDirectory(directories[0])
        }
    }

    /// The directories this process joins. On v1, each hierarchy costs a write that
    /// the kernel makes slow (a cgroup migration), so only those that the limits need,
    /// and pids, which tracks every process for `plash kill` and the next start.
    func joined(_ limits: ResourceLimits) -> [String] {
        guard case .legacy(let mounts) = hierarchy, mounts["pids"] != nil else { return directories }
        var controllers = ["pids"]
        if limits.memory != nil { controllers.append("memory") }
        if limits.cpus != nil { controllers += ["cpu", "cpuacct"] }
        var dirs: [String] = []
        for controller in controllers {
            if let mount = mounts[controller], !dirs.contains(mount + "/plash/" + name) { dirs.append(mount + "/plash/" + name) }
        }
        return dirs
    }

    /// Every process in the cgroup.
    public func processes() -> [pid_t] {
        var pids = Set<pid_t>()
        for dir in directories {
            guard let words = try? readWords(dir + "/cgroup.procs") else { continue }
            words.compactMap { pid_t($0) }.forEach { pids.insert($0) }
        }
        return pids.sorted()
    }


    /// Kills every process in the cgroup and waits until it is empty, so a restarted
    /// service never runs beside its own orphans. cgroup.kill (v2, Linux 5.14) also
    /// catches processes forking while we kill; elsewhere, kill until none is left.
    /// (This process may already be in some of its hierarchies when a start is retried.)
    public func killAll() throws {
        let present = processes()
        if case .unified = hierarchy, access(directories[0] + "/cgroup.kill", W_OK) == 0,
           !present.isEmpty, !present.contains(getpid()) {
            try writeFile(directories[0] + "/cgroup.kill", "1")
        }
        for _ in 0..<500 {
            let pids = processes().filter { $0 != getpid() }
            if pids.isEmpty { return }
            for pid in pids { kill(pid, SIGKILL) }
            usleep(10_000)
        }
        throw PlashError.system("kill the earlier processes of cgroup", directories[0], errno: EBUSY)
    }

    /// Writes every limit, "unlimited" for those not given: a reused cgroup must not
    /// keep the limits of an earlier instance.
    func apply(_ limits: ResourceLimits) throws {
        let period = 100_000
        let quota = limits.cpus.map { max(1000, Int(($0 * Double(period)).rounded())) }
        switch hierarchy {
        case .unified:
            let dir = directories[0]
            try writeIfPresent(dir + "/memory.max", limits.memory.map(String.init) ?? "max")
            try writeIfPresent(dir + "/memory.swap.max", limits.memory == nil ? "max" : "0")
            try writeIfPresent(dir + "/pids.max", limits.pids.map(String.init) ?? "max")
            try writeIfPresent(dir + "/cpu.max", "\(quota.map(String.init) ?? "max") \(period)")
        case .legacy(let mounts):
            // Each hierarchy this process joins (see joined()); those it does not join
            // limit it in nothing. (Without a pids hierarchy it joins them all.)
            let joined = joined(limits)
            func dir(_ controller: String) -> String? {
                mounts[controller].map { $0 + "/plash/" + name }.flatMap { joined.contains($0) ? $0 : nil }
            }
            if let memory = dir("memory") {
                // memsw (memory + swap) may never be below the memory limit: lift it first.
                try writeIfPresent(memory + "/memory.memsw.limit_in_bytes", "-1")
                try writeFile(memory + "/memory.limit_in_bytes", limits.memory.map(String.init) ?? "-1")
                if let bytes = limits.memory { try writeIfPresent(memory + "/memory.memsw.limit_in_bytes", "\(bytes)") }
            }
            if let pids = dir("pids") {
                try writeFile(pids + "/pids.max", limits.pids.map(String.init) ?? "max")
            }
            if let cpu = dir("cpu") {
                try writeFile(cpu + "/cpu.cfs_period_us", "\(period)")
                try writeFile(cpu + "/cpu.cfs_quota_us", quota.map(String.init) ?? "-1")
            }
        }
    }
}

/// Enables, for the children of the v2 cgroup `directory`, those of `controllers` that
/// it offers and has not enabled yet.
func enableForChildren(_ controllers: [String], in directory: String) throws {
    let available = try readWords(directory + "/cgroup.controllers")
    let enabled = try readWords(directory + "/cgroup.subtree_control")
    let wanted = controllers.filter { available.contains($0) && !enabled.contains($0) }
    if !wanted.isEmpty {
        try writeFile(directory + "/cgroup.subtree_control", wanted.map { "+" + $0 }.joined(separator: " "))
    }
}

func makeDirectory(_ path: String) throws {
    if mkdir(path, 0o755) == -1 && errno != EEXIST { throw PlashError.system("create cgroup", path) }
}

func writeIfPresent(_ path: String, _ value: String) throws {
    if access(path, F_OK) == 0 { try writeFile(path, value) }
}

func readWords(_ path: String) throws -> [String] {
    String(decoding: try readFile(path, what: "read"), as: UTF8.self)
        .split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
}

/// The path of this process's cgroup in a hierarchy: the line `ID:CONTROLLERS:PATH`
/// of /proc/self/cgroup whose controllers hold `controller` ("" matches v2's `0::PATH`).
func ownPath(_ own: String, controller: String) -> String? {
    let entries = own.split(separator: "\n").map { $0.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false) }
    let entry = entries.first { fields in
        fields.count == 3 && (controller.isEmpty ? fields[1].isEmpty : fields[1].split(separator: ",").contains(Substring(controller)))
    }
    return entry.map { String($0[2]) }
}

/// Whether this process lives in `directory` itself (not below it), and that is not
/// the top of the hierarchy (the one cgroup without cgroup.type): the host's, which
/// plash never changes.
func isOwnCgroup(_ directory: String) throws -> Bool {
    try access(directory + "/cgroup.type", F_OK) == 0 && readWords(directory + "/cgroup.procs").contains("\(getpid())")
}

/// fgetxattr(2) is not in Swift's Glibc module.
@_silgen_name("fgetxattr")
private func fgetxattr(_ fd: Int32, _ name: UnsafePointer<CChar>, _ value: UnsafeMutableRawPointer?, _ size: Int) -> Int

/// systemd marks a cgroup it delegated (Delegate=yes) with the extended attribute
/// trusted.delegate (Debian 12's systemd 252 sets it and user.delegate on system
/// units; its user manager marks none). docs/limits.md.
func isDelegated(_ directory: String) -> Bool {
    let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var value: UInt8 = 0
    for name in ["trusted.delegate", "user.delegate"] where fgetxattr(fd, name, &value, 1) == 1 {
        if value == UInt8(ascii: "1") { return true }
    }
    return false
}

func isOwned(_ directory: String) -> Bool {
    var info = stat()
    return stat(directory, &info) == 0 && info.st_uid == geteuid()
}

/// The highest directory from this process's cgroup (a line `ID:CONTROLLERS:PATH` of
/// /proc/self/cgroup; "" matches v2's `0::PATH`) up to the mount that this user owns.
func delegatedBase(mount: String, own: String, controller: String) throws -> String {
    let path = ownPath(own, controller: controller) ?? "/"
    var candidate = mount + (path == "/" ? "" : path)
    var owned: String? = nil
    while candidate.count >= mount.count {
        if isOwned(candidate) { owned = candidate }
        if candidate == mount { break }
        candidate = splitLast(candidate).0
    }
    guard let owned else { throw PlashError.system("cgroup", mount + (path == "/" ? "" : path), errno: EACCES) }
    return owned
}

/// Records in the store that a container of it makes the cgroup plash/NAME, before it
/// is made: `plash clean` removes only the cgroups its own store recorded, never those
/// of other stores or of anything else below plash/. A store that cannot be written (a
/// read-only one, a directory that is no store) records nothing; its cgroups stay.
public func recordCgroup(_ name: String, store: StoreLayout) {
    let record = store.cgroups + "/" + name
    var fd = open(record, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
    if fd == -1 && errno == ENOENT && access(store.marker, F_OK) == 0 {
        mkdir(store.cgroups, 0o755)
        fd = open(record, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
    }
    if fd >= 0 { close(fd) }
}

/// Removes the cgroups that containers of `store` made (recordCgroup) and no process
/// uses any more, and their records; those of `names` only, when given.
public func removeEmptyRecordedCgroups(store: StoreLayout, hierarchy: CgroupHierarchy, names: [String]? = nil) {
    let recorded = directoryEntries(store.cgroups) ?? []
    let chosen = names.map { names in recorded.filter(names.contains) } ?? recorded
    for name in removeEmptyCgroups(chosen, hierarchy: hierarchy) { unlink(store.cgroups + "/" + name) }
}

/// The pid-PID cgroups (limits without --cgroup) of this store's earlier containers
/// whose PID has ended: their creator can no longer join them, so an empty one is
/// removed by the next container with limits instead of staying until `plash clean`.
/// A live PID's cgroup stays: its plash-exec may be between making and joining it.
public func endedPidCgroups(store: StoreLayout) -> [String] {
    (directoryEntries(store.cgroups) ?? []).filter { name in
        guard name.hasPrefix("pid-"), let pid = pid_t(name.dropFirst(4)), pid > 0 else { return false }
        return kill(pid, 0) == -1 && errno == ESRCH
    }
}

/// Removes the cgroups plash/NAME of `names` that no process uses any more (rmdir
/// refuses a busy one), and returns the names of those now gone from every hierarchy.
/// Cgroups of containers started without --cgroup pile up otherwise.
public func removeEmptyCgroups(_ names: [String], hierarchy: CgroupHierarchy) -> [String] {
    names.filter { name in
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else { return false }
        return Cgroup(name, hierarchy: hierarchy).directories.allSatisfy { rmdir($0) == 0 || errno == ENOENT }
    }
}
