#if canImport(Glibc)
import Glibc
#endif

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

private let CLONE_NEWNS: Int32 = 0x0002_0000, CLONE_NEWCGROUP: Int32 = 0x0200_0000,
            CLONE_NEWUTS: Int32 = 0x0400_0000, CLONE_NEWIPC: Int32 = 0x0800_0000,
            CLONE_NEWUSER: Int32 = 0x1000_0000, CLONE_NEWPID: Int32 = 0x2000_0000,
            CLONE_NEWNET: Int32 = 0x4000_0000

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

/// Compiled profiles live in the store as `seccomp/KEY.bpf`, beside a copy of the
/// profile they came from (`KEY.json`): plash-exec compares the copy with the file it
/// was given, byte for byte, and loads the BPF without parsing any JSON.
public func seccompCacheKey(_ profile: [UInt8]) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325   // FNV-1a; the byte comparison makes it exact
    for byte in profile {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01b3
    }
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

public func seccompCachePaths(_ profile: [UInt8], store: String) -> (profile: String, bpf: String) {
    let base = "\(store)/seccomp/\(seccompCacheKey(profile))"
    return (base + ".json", base + ".bpf")
}
