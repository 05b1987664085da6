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
    /// always included. A system call of any other architecture kills the whole process:
    /// libseccomp's own choice, KILL_THREAD, would let a program whose one thread made
    /// it go on.
    public init(defaultAction: SeccompAction, architectures: [String] = []) throws {
        guard let context = seccomp_init(defaultAction.value) else {
            throw PlashError.failure("cannot create a seccomp filter (unsupported default action?)")
        }
        self.context = context
        let set = seccomp_attr_set(context, SCMP_FLTATR_ACT_BADARCH, SeccompAction.killProcess.value)
        guard set == 0 else { throw PlashError.failure("seccomp bad-architecture action: \(String(cString: strerror(-set)))") }
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

/// What a classic BPF seccomp program (as `exportBPF` writes it: struct sock_filter,
/// little endian) returns for the system call `name` of the native architecture with
/// every argument 0, found by running it as the kernel would; nil when the program
/// uses an instruction this does not know. Lets `plash seccomp` refuse a profile under
/// which no program could even start.
public func seccompVerdict(_ program: [UInt8], syscall name: String) -> UInt32? {
    let number = seccomp_syscall_resolve_name(name)
    guard number != __NR_SCMP_ERROR, program.count % 8 == 0 else { return nil }
    // struct seccomp_data: nr, arch, instruction_pointer, args[6].
    var data = [UInt8](repeating: 0, count: 64)
    for (offset, value) in [(0, UInt32(bitPattern: number)), (4, seccomp_arch_native())] {
        for byte in 0..<4 { data[offset + byte] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(byte))) }
    }
    func word(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) }
    }
    var a: UInt32 = 0, x: UInt32 = 0
    var memory = [UInt32](repeating: 0, count: 16)
    var pc = 0
    while pc < program.count / 8 {
        let at = pc * 8
        let code = UInt16(program[at]) | UInt16(program[at + 1]) << 8
        let jt = Int(program[at + 2]), jf = Int(program[at + 3])
        let k = word(program, at + 4)
        pc += 1
        let operand = code & 0x08 != 0 ? x : k           // BPF_X or BPF_K
        switch code & 0x07 {                             // the instruction class
        case 0x00:                                       // BPF_LD
            switch code & 0xe0 {
            case 0x20 where Int(k) + 4 <= data.count && k % 4 == 0: a = word(data, Int(k))   // BPF_ABS
            case 0x00: a = k                                                               // BPF_IMM
            case 0x60 where k < 16: a = memory[Int(k)]                                     // BPF_MEM
            default: return nil
            }
        case 0x01:                                       // BPF_LDX
            switch code & 0xe0 {
            case 0x00: x = k
            case 0x60 where k < 16: x = memory[Int(k)]
            default: return nil
            }
        case 0x02 where k < 16: memory[Int(k)] = a       // BPF_ST
        case 0x03 where k < 16: memory[Int(k)] = x       // BPF_STX
        case 0x04:                                       // BPF_ALU
            switch code & 0xf0 {
            case 0x00: a = a &+ operand
            case 0x10: a = a &- operand
            case 0x20: a = a &* operand
            case 0x30 where operand != 0: a = a / operand
            case 0x40: a = a | operand
            case 0x50: a = a & operand
            case 0x60: a = operand < 32 ? a << operand : 0
            case 0x70: a = operand < 32 ? a >> operand : 0
            case 0x80: a = 0 &- a
            case 0xa0: a = a ^ operand
            default: return nil
            }
        case 0x05:                                       // BPF_JMP
            let taken: Bool
            switch code & 0xf0 {
            case 0x00: pc += Int(k); continue            // BPF_JA
            case 0x10: taken = a == operand
            case 0x20: taken = a > operand
            case 0x30: taken = a >= operand
            case 0x40: taken = a & operand != 0
            default: return nil
            }
            pc += taken ? jt : jf
        case 0x06: return code & 0x18 == 0x10 ? a : k     // BPF_RET: A or K
        case 0x07: if code & 0xf8 == 0 { x = a } else { a = x }   // BPF_MISC: TAX, TXA
        default: return nil
        }
    }
    return nil
}

/// The filter lets the call through to the kernel: SECCOMP_RET_ALLOW or _LOG.
public func seccompAllows(_ verdict: UInt32) -> Bool {
    let action = verdict & 0xffff_0000
    return action == 0x7fff_0000 || action == 0x7ffc_0000
}
