#if canImport(Glibc)
import Glibc
#endif
import CPlashShims

/// `--seccomp default`: a deny list modelled on Docker's default profile. Everything
/// not named here is allowed, so shells, job control and package managers work; what
/// is named fails with EPERM, as it would for an unprivileged process.
public let defaultSeccompRules: [SeccompRule] = {
    let denied = [
        // Replacing or extending the kernel.
        "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
        // Rearranging the container's own mounts or leaving its namespaces, with the
        // old and the new mount API.
        "mount", "umount2", "pivot_root", "unshare", "setns",
        "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
        // The kernel keyring is not namespaced.
        "keyctl", "add_key", "request_key",
        // Kernel attack surface that containers do not need.
        "bpf", "perf_event_open", "userfaultfd", "lookup_dcookie", "iopl", "ioperm",
        // Escaping through file handles (the "shocker" exploit).
        "open_by_handle_at",
        // The host's memory, clock, accounting and power.
        "swapon", "swapoff", "reboot", "settimeofday", "clock_settime", "acct", "quotactl",
        "syslog", "vhangup",
        // io_uring does file and network work without the system calls this filter sees
        // (its openat takes a mode too); Docker's profile blocks it as well.
        "io_uring_setup", "io_uring_enter", "io_uring_register",
    ]
    let eperm = SeccompAction.errno(EPERM)
    var rules = denied.map { SeccompRule($0, eperm) }

    // clone() may create namespaces too; clone3() hides its flags in a struct that
    // seccomp cannot read, so it says "not implemented" and libc falls back to clone().
    let namespaces: [Int32] = [CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID,
                               CLONE_NEWNET, CLONE_NEWCGROUP]
    for flag in namespaces.map({ UInt64($0) }) {
        rules.append(SeccompRule("clone", eperm, [SeccompCondition(0, .maskedEqual, flag, flag)]))
    }
    rules.append(SeccompRule("clone3", .errno(ENOSYS)))

    // Injecting input into a terminal. The kernel reads the request as 32 bits, so
    // compare only those: `TIOCSTI | 1 << 32` must not slip through.
    for request in [0x5412 as UInt64 /* TIOCSTI */, 0x541C /* TIOCLINUX */] {
        rules.append(SeccompRule("ioctl", eperm, [SeccompCondition(1, .maskedEqual, 0xFFFF_FFFF, request)]))
    }
    return rules
}()

/// --isolate's own rules, loaded after the filter it is given (the default one or a
/// profile): what a root container writes into a --bind or --persist directory is the
/// host's, so it may carry no privilege out. Set-user-ID and set-group-ID bits are
/// refused wherever a mode is set (chmod and every call that creates a file with a
/// mode); openat2 hides its mode in a struct that seccomp cannot read, so it says "not
/// implemented" and libc uses openat. (File capabilities and device nodes need
/// CAP_SETFCAP and CAP_MKNOD, which --isolate drops.)
public let isolateSeccompRules: [SeccompRule] = {
    let modeArgument: [(String, UInt32)] = [
        ("chmod", 1), ("fchmod", 1), ("fchmodat", 2), ("fchmodat2", 2),
        ("open", 2), ("openat", 3), ("creat", 1), ("mknod", 1), ("mknodat", 2),
    ]
    var rules: [SeccompRule] = []
    for (call, index) in modeArgument {
        for bit in [0o4000 as UInt64 /* S_ISUID */, 0o2000 /* S_ISGID */] {
            rules.append(SeccompRule(call, .errno(EPERM), [SeccompCondition(index, .maskedEqual, bit, bit)]))
        }
    }
    rules.append(SeccompRule("openat2", .errno(ENOSYS)))
    rules += ["io_uring_setup", "io_uring_enter", "io_uring_register"].map { SeccompRule($0, .errno(EPERM)) }
    return rules
}()

public func isolateSeccompFilter() throws -> SeccompFilter {
    let filter = try SeccompFilter(defaultAction: .allow, architectures: compatibleArchitectures)
    for rule in isolateSeccompRules { try filter.add(rule) }
    return filter
}

/// The architectures a filter covers: the native one and, on x86_64, 32-bit x86, whose
/// system calls have other numbers and get the same rules. System calls of any other
/// ABI, x32 included (rarely enabled; it would double the filter's cost), are killed.
public var compatibleArchitectures: [String] {
    #if arch(x86_64)
    return ["x86_64", "x86"]
    #else
    return []
    #endif
}

public func defaultSeccompFilter() throws -> SeccompFilter {
    let filter = try SeccompFilter(defaultAction: .allow, architectures: compatibleArchitectures)
    for rule in defaultSeccompRules { try filter.add(rule) }
    return filter
}

/// Docker's default profile is about 20 KiB; anything past this is no profile (/dev/zero).
public let seccompProfileLimit = 16 << 20

/// Compiled profiles live in the store's seccomp/ directory: the BPF as `H.bpf`, H the
/// SHA-256 of the profile and the BPF together, and beside it a symlink named by the
/// key of the profile that leads there. plash-exec follows the symlink, reads the
/// BPF and loads it only when the file is the caller's (or root's), nobody else may
/// write it, and the hash of the profile it was given and that BPF is the file's name:
/// no JSON is parsed on the start path, and no program is trusted that plash did not
/// compile from this very profile.
///
/// The key's version goes up when the same profile compiles to another program, so
/// that a program an older plash compiled is not loaded: 1 was the bare SHA-256 of
/// the profile; 2, system calls of other ABIs kill the process, not the thread.
public func seccompIndexPath(_ profile: [UInt8], store: String) -> String {
    var key = CacheKey("seccomp profile", version: 2)
    key.add(bytes: profile)
    return StoreLayout(path: store).seccomp + "/" + key.hex()
}

/// `H.bpf`: the name of the BPF compiled from `profile`.
public func seccompProgramName(profile: [UInt8], program: [UInt8]) -> String {
    var key = CacheKey("seccomp")
    key.add("\(profile.count)")
    key.add(bytes: profile)
    key.add(bytes: program)
    return key.hex() + ".bpf"
}

/// The BPF that plash compiled from `profile`, or nil when there is none yet. Throws
/// when what is there cannot be trusted.
public func compiledSeccompProgram(_ profile: [UInt8], store: String) throws -> [UInt8]? {
    let index = seccompIndexPath(profile, store: store)
    guard let name = readLink(index) else { return nil }
    let directory = splitLast(index).0
    let path = directory + "/" + name
    // Only a plain name in seccomp/: the symlink may not lead elsewhere.
    guard !name.contains("/") else { throw PlashError.failure("compiled seccomp profile \(index): leads out of \(directory)") }
    try checkOwnedAndPrivate(directory, what: "compiled seccomp profile")
    let fd = try openToRead(path, what: "compiled seccomp profile", flags: O_NOFOLLOW)
    defer { close(fd) }
    try checkOwnedAndPrivate(fd: fd, path: path, what: "compiled seccomp profile")
    let program = try readAll(fd, path: path, what: "compiled seccomp profile", limit: seccompProfileLimit)
    guard seccompProgramName(profile: profile, program: program) == name else {
        throw PlashError.failure("compiled seccomp profile \(path): its contents do not match its name")
            .advising("it was changed after plash compiled it; remove it and start again")
    }
    return program
}

/// A file that someone other than the caller (or root) owns, or may write, could have
/// been replaced: refused.
func checkOwnedAndPrivate(_ path: String, what: Step) throws {
    let fd = try check(open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), what, path)
    defer { close(fd) }
    try checkOwnedAndPrivate(fd: fd, path: path, what: what)
}

func checkOwnedAndPrivate(fd: Int32, path: String, what: Step) throws {
    var info = stat()
    try check(fstat(fd, &info), what, path)
    if info.st_uid != geteuid() && info.st_uid != 0 {
        throw PlashError.failure("\(what) \(path): owned by uid \(info.st_uid), not by this user or root")
    }
    if info.st_mode & (S_IWGRP | S_IWOTH) != 0 {
        throw PlashError.failure("\(what) \(path): others may write it (mode \(String(info.st_mode & 0o7777, radix: 8)))")
    }
}
