#if canImport(Glibc)
import Glibc
#endif
import CPlashShims
import CSeccomp

/// What a seccomp rule does to a matching system call.
public enum SeccompAction: Equatable, Sendable {
    case allow, killThread, killProcess, trap, log
    case errno(Int32)
    case trace(Int32)

    var value: UInt32 {
        switch self {
        case .allow: return SCMP_ACT_ALLOW
        case .killThread: return SCMP_ACT_KILL_THREAD
        case .killProcess: return SCMP_ACT_KILL_PROCESS
        case .trap: return SCMP_ACT_TRAP
        case .log: return SCMP_ACT_LOG
        case .errno(let code): return 0x0005_0000 | (UInt32(code) & 0xffff)   // SCMP_ACT_ERRNO
        case .trace(let code): return 0x7ff0_0000 | (UInt32(code) & 0xffff)   // SCMP_ACT_TRACE
        }
    }
}

/// A condition on one argument of a system call (libseccomp's scmp_arg_cmp).
public struct SeccompCondition: Equatable, Sendable {
    public enum Operator: String, Sendable { case notEqual, less, lessOrEqual, equal, greaterOrEqual, greater, maskedEqual }
    public var index: UInt32
    public var op: Operator
    public var value: UInt64
    public var valueTwo: UInt64

    public init(_ index: UInt32, _ op: Operator, _ value: UInt64, _ valueTwo: UInt64 = 0) {
        self.index = index
        self.op = op
        self.value = value
        self.valueTwo = valueTwo
    }

    var raw: scmp_arg_cmp {
        let ops: [Operator: scmp_compare] = [
            .notEqual: SCMP_CMP_NE, .less: SCMP_CMP_LT, .lessOrEqual: SCMP_CMP_LE, .equal: SCMP_CMP_EQ,
            .greaterOrEqual: SCMP_CMP_GE, .greater: SCMP_CMP_GT, .maskedEqual: SCMP_CMP_MASKED_EQ,
        ]
        return scmp_arg_cmp(arg: index, op: ops[op]!, datum_a: value, datum_b: valueTwo)
    }
}

public struct SeccompRule: Equatable, Sendable {
    public var syscall: String
    public var action: SeccompAction
    public var conditions: [SeccompCondition]

    public init(_ syscall: String, _ action: SeccompAction, _ conditions: [SeccompCondition] = []) {
        self.syscall = syscall
        self.action = action
        self.conditions = conditions
    }
}

/// A seccomp filter being built with libseccomp; load it into this process, or export
/// its BPF program for plash-exec to load later.
public final class SeccompFilter {
    private let context: scmp_filter_ctx

    /// `architectures`: libseccomp names ("x86_64", "x86", "x32"); the native one is
    /// always included. System calls of other architectures are killed.
    public init(defaultAction: SeccompAction, architectures: [String] = []) throws {
        guard let context = seccomp_init(defaultAction.value) else {
            throw PlashError.failure("cannot create a seccomp filter (unsupported default action?)")
        }
        self.context = context
        for name in architectures {
            let token = seccomp_arch_resolve_name(name)
            guard token != 0 else { throw PlashError.failure("unknown architecture \"\(name)\"") }
            let result = seccomp_arch_add(context, token)
            guard result == 0 || result == -EEXIST else {
                throw PlashError.failure("architecture \"\(name)\": \(String(cString: strerror(-result)))")
            }
        }
    }

    deinit { seccomp_release(context) }

    public func add(_ rule: SeccompRule) throws {
        let number = seccomp_syscall_resolve_name(rule.syscall)
        guard number != __NR_SCMP_ERROR else { throw PlashError.failure("unknown system call \"\(rule.syscall)\"") }
        let conditions = rule.conditions.map(\.raw)
        let result = conditions.withUnsafeBufferPointer {
            seccomp_rule_add_array(context, rule.action.value, number, UInt32($0.count), $0.baseAddress)
        }
        // -EACCES: the rule's action is the default action, so it is not needed.
        guard result == 0 || result == -EACCES else {
            throw PlashError.failure("rule for \(rule.syscall): \(String(cString: strerror(-result)))")
        }
    }

    /// Loads the filter into this process (and sets no_new_privs, as libseccomp does).
    public func load() throws {
        let result = seccomp_load(context)
        guard result == 0 else { throw PlashError.system("load seccomp filter", "", errno: -result) }
    }

    public func exportBPF(to fd: Int32) throws {
        let result = seccomp_export_bpf(context, fd)
        guard result == 0 else { throw PlashError.failure("export BPF: \(String(cString: strerror(-result)))") }
    }
}

/// Loads a BPF program exported by `SeccompFilter.exportBPF`. The caller must have set
/// no_new_privs (or have CAP_SYS_ADMIN).
public func loadSeccompBPF(_ program: [UInt8], path: String) throws {
    guard !program.isEmpty, program.count % 8 == 0, program.count / 8 <= 4096 else {
        throw PlashError.system("load seccomp filter", path, errno: EINVAL)
    }
    let result = program.withUnsafeBytes { plash_load_seccomp_bpf($0.baseAddress, UInt16($0.count / 8)) }
    try check(result, "load seccomp filter", path)
}
