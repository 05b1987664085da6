#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PlashSystem

/// A Docker or OCI seccomp profile, the fields plash understands.
struct SeccompProfile: Decodable {
    struct ArchMap: Decodable {
        var architecture: String
        var subArchitectures: [String]?
    }
    struct Argument: Decodable {
        var index: Whole<UInt32>
        var value: Whole<UInt64>
        var valueTwo: Whole<UInt64>?
        var op: String
    }
    struct Filter: Decodable {
        var caps: [String]?
        var arches: [String]?
        var minKernel: String?
    }
    struct Syscall: Decodable {
        var names: [String]?
        var name: String?
        var action: String
        var errnoRet: Whole<UInt32>?
        var args: [Argument]?
        var includes: Filter?
        var excludes: Filter?
    }
    var defaultAction: String
    var defaultErrnoRet: Whole<UInt32>?
    var architectures: [String]?
    var archMap: [ArchMap]?
    var syscalls: [Syscall]?
}

/// A whole number of the field's type. Out of range (`1e30`, `-1`), JSONDecoder would
/// say only that the data is not valid JSON; this says which field is wrong.
struct Whole<Number: FixedWidthInteger & Decodable>: Decodable {
    var value: Number

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Number.self) {
            self.value = value
            return
        }
        let number = try container.decode(Double.self)
        let reason = number.rounded() != number ? "not a whole number" : "out of range (\(Number.min)-\(Number.max))"
        throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\(number) is \(reason)"))
    }
}

/// Compiles a Docker/OCI seccomp profile (JSON) into BPF with libseccomp, once: the
/// result is kept in the store (`seccomp/H.bpf`, see `seccompIndexPath`), where
/// plash-exec checks and loads it without parsing JSON. Returns the path of the BPF.
public func compileSeccompProfile(_ path: String, store: String) throws -> String {
    try compileSeccompProfile(try readFile(path, what: "seccomp profile", limit: seccompProfileLimit), named: path, store: store)
}

/// The same for a profile read already (from stdin), `path` naming it in errors.
public func compileSeccompProfile(_ bytes: [UInt8], named path: String, store: String) throws -> String {
    let index = seccompIndexPath(bytes, store: store)
    // Compiled and intact already; anything else is compiled again and replaced.
    if (try? compiledSeccompProgram(bytes, store: store)) != nil, let name = readLink(index) {
        return splitLast(index).0 + "/" + name
    }
    let filter: SeccompFilter
    do {
        filter = try seccompFilter(from: bytes)
    } catch let error as DecodingError {
        throw PlashError.failure("seccomp profile \(path): \(describe(error))")
    } catch {
        throw error.context("seccomp profile \(path)")
    }

    // The BPF goes beside its final name, is read back to name it by its hash, and is
    // renamed into place; then the symlink that plash-exec looks for: a reader never
    // sees a half-written program.
    let dir = StoreLayout(path: store).seccomp
    try makeDirectories(dir, step: "create")
    // plash-exec refuses a directory that others may write, whatever the umask was.
    try check(chmod(dir, 0o755), "chmod", dir)
    let staging = "\(dir)/.tmp-\(getpid())"
    unlink(staging)
    let fd = try check(open(staging, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644), "create", staging)
    do {
        defer { close(fd) }
        try check(fchmod(fd, 0o644), "create", staging)
        try filter.exportBPF(to: fd)
    } catch {
        unlink(staging)
        throw error.context("seccomp profile \(path)")
    }
    let program: [UInt8]
    do {
        program = try readFile(staging, what: "read")
        try checkStartable(program)
    } catch {
        unlink(staging)
        throw error.context("seccomp profile \(path)")
    }
    let name = seccompProgramName(profile: bytes, program: program)
    try check(rename(staging, dir + "/" + name), "rename", dir + "/" + name)
    unlink(staging)
    try check(symlink(name, staging), "create", staging)
    try check(rename(staging, index), "rename", index)
    return dir + "/" + name
}

/// plash-exec loads the filter, then execs the program; a failed exec prints a line
/// and exits. A profile that blocks those would end every start in a bare crash (a
/// failed exit returns, and the code after it was never meant to run), so it is
/// refused here, with a line that says why.
func checkStartable(_ program: [UInt8]) throws {
    func allowed(_ name: String) -> Bool { seccompVerdict(program, syscall: name).map(seccompAllows) ?? true }
    if !allowed("execve") {
        throw PlashError.failure("it blocks execve, so no program could start under it")
    }
    if !allowed("exit_group") && !allowed("exit") {
        throw PlashError.failure("it blocks exit_group and exit, so no program could end under it")
    }
}

func seccompFilter(from json: [UInt8]) throws -> SeccompFilter {
    let profile = try JSONDecoder().decode(SeccompProfile.self, from: Data(json))
    try profile.check()
    let defaultErrno = profile.defaultErrnoRet.map { Int32($0.value) } ?? EPERM
    let defaultAction = try action(profile.defaultAction, errno: defaultErrno)
    var architectures = (profile.architectures ?? []).map(architecture)
    for entry in profile.archMap ?? [] where architecture(entry.architecture) == nativeArchitecture {
        architectures += [architecture(entry.architecture)] + (entry.subArchitectures ?? []).map(architecture)
    }
    let filter = try SeccompFilter(defaultAction: defaultAction, architectures: architectures)
    for entry in profile.syscalls ?? [] where applies(entry) {
        let names = (entry.names ?? []) + (entry.name.map { [$0] } ?? [])
        let ruleAction = try action(entry.action, errno: entry.errnoRet.map { Int32($0.value) } ?? defaultErrno)
        let conditions = try (entry.args ?? []).map { argument -> SeccompCondition in
            guard let op = operators[argument.op] else { throw PlashError.failure("unsupported operator \"\(argument.op)\"") }
            return SeccompCondition(argument.index.value, op, argument.value.value, argument.valueTwo?.value ?? 0)
        }
        for name in names { try filter.add(SeccompRule(name, ruleAction, conditions)) }
    }
    return filter
}

extension SeccompProfile {
    /// What decodes but the kernel cannot take: an errno above 4095 would be cut to 16
    /// bits, an argument index above 5 does not exist.
    func check() throws {
        func errnoInRange(_ number: Whole<UInt32>?, _ field: String) throws {
            if let value = number?.value, value > 4095 { throw PlashError.failure("\(field): \(value) is not an errno (0-4095)") }
        }
        try errnoInRange(defaultErrnoRet, "defaultErrnoRet")
        for (i, entry) in (syscalls ?? []).enumerated() {
            try errnoInRange(entry.errnoRet, "syscalls[\(i)].errnoRet")
            for (j, argument) in (entry.args ?? []).enumerated() where argument.index.value > 5 {
                throw PlashError.failure("syscalls[\(i)].args[\(j)].index: \(argument.index.value) is not an argument index (0-5)")
            }
        }
    }
}

func action(_ name: String, errno: Int32) throws -> SeccompAction {
    switch name {
    case "SCMP_ACT_ALLOW": return .allow
    case "SCMP_ACT_ERRNO": return .errno(errno)
    case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return .killThread
    case "SCMP_ACT_KILL_PROCESS": return .killProcess
    case "SCMP_ACT_TRAP": return .trap
    case "SCMP_ACT_LOG": return .log
    case "SCMP_ACT_TRACE": return .trace(errno)
    default: throw PlashError.failure("unsupported action \"\(name)\"")
    }
}

let operators: [String: SeccompCondition.Operator] = [
    "SCMP_CMP_NE": .notEqual, "SCMP_CMP_LT": .less, "SCMP_CMP_LE": .lessOrEqual, "SCMP_CMP_EQ": .equal,
    "SCMP_CMP_GE": .greaterOrEqual, "SCMP_CMP_GT": .greater, "SCMP_CMP_MASKED_EQ": .maskedEqual,
]

/// libseccomp's name for an architecture as profiles give it: "SCMP_ARCH_X86_64", or
/// Go's name (GOARCH), which Docker's and containers-common's profiles use in
/// `includes`/`excludes`: "amd64" is x86_64, "386" is x86, "arm64" is aarch64.
func architecture(_ name: String) -> String {
    if name.hasPrefix("SCMP_ARCH_") { return String(name.dropFirst(10)).lowercased() }
    return goArchitectures[name] ?? name.lowercased()
}

let goArchitectures = [
    "amd64": "x86_64", "386": "x86", "arm64": "aarch64", "mips64le": "mipsel64", "mips64n32le": "mipsel64n32",
    "mipsle": "mipsel", "loong64": "loongarch64",
]

var nativeArchitecture: String {
    #if arch(x86_64)
    return "x86_64"
    #elseif arch(arm64)
    return "aarch64"
    #else
    return ""
    #endif
}

/// Docker's conditional rules. A plash container's root holds every capability (in
/// its user namespace), so rules for a capability apply and rules excluding one don't.
func applies(_ entry: SeccompProfile.Syscall) -> Bool {
    if let arches = entry.includes?.arches, !arches.map(architecture).contains(nativeArchitecture) { return false }
    if let arches = entry.excludes?.arches, arches.map(architecture).contains(nativeArchitecture) { return false }
    if let caps = entry.excludes?.caps, !caps.isEmpty { return false }
    if let minimum = entry.includes?.minKernel, !kernelIsAtLeast(minimum) { return false }
    return true
}

func kernelIsAtLeast(_ version: String) -> Bool {
    var name = utsname()
    uname(&name)
    let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    func numbers(_ text: String) -> [Int] {
        text.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
    }
    return numbers(release).lexicographicallyPrecedes(numbers(version)) == false
}

/// One line for a profile the decoder refused, naming the field: `syscalls[2].errnoRet`.
func describe(_ error: DecodingError) -> String {
    func field(_ path: [CodingKey]) -> String {
        path.reduce("") { text, key in
            if let index = key.intValue { return text + "[\(index)]" }
            return text.isEmpty ? key.stringValue : text + "." + key.stringValue
        }
    }
    switch error {
    case .dataCorrupted(let context) where context.codingPath.isEmpty:
        return "not valid JSON" + (context.underlyingError.map { " (\($0))" } ?? "")
    case .dataCorrupted(let context): return "\(field(context.codingPath)): \(context.debugDescription)"
    case .keyNotFound(let key, let context): return "missing \"\(field(context.codingPath + [key]))\""
    case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
        // A keyed container is asked for as [String: Any], a Collection too.
        let expected = type == String.self ? "a string" : type is [String: Any].Type ? "an object"
            : type is any Collection.Type ? "a list" : type is any Numeric.Type ? "a number" : "an object"
        let at = context.codingPath.isEmpty ? "the profile" : field(context.codingPath)
        return "\(at): expected \(expected)"
    @unknown default: return "\(error)"
    }
}
