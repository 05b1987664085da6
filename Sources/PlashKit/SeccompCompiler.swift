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
        var index: UInt32
        var value: UInt64
        var valueTwo: UInt64?
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
        var errnoRet: UInt32?
        var args: [Argument]?
        var includes: Filter?
        var excludes: Filter?
    }
    var defaultAction: String
    var defaultErrnoRet: UInt32?
    var architectures: [String]?
    var archMap: [ArchMap]?
    var syscalls: [Syscall]?
}

/// Compiles a Docker/OCI seccomp profile (JSON) into BPF with libseccomp, once: the
/// result is kept in the store by content (`seccomp/KEY.bpf`, see
/// `seccompCachePaths`), where plash-exec loads it without parsing JSON.
/// Returns the path of the BPF program.
public func compileSeccompProfile(_ path: String, store: String) throws -> String {
    let bytes: [UInt8]
    do {
        bytes = try readFile(path, what: "seccomp profile")
    } catch {
        throw PlashError.failure("\(error)")
    }
    let cached = seccompCachePaths(bytes, store: store)
    if (try? Data(contentsOf: URL(fileURLWithPath: cached.profile))) == Data(bytes),
       FileManager.default.fileExists(atPath: cached.bpf) {
        return cached.bpf
    }
    let filter: SeccompFilter
    do {
        filter = try seccompFilter(from: Data(bytes))
    } catch let error as DecodingError {
        throw PlashError.failure("seccomp profile \(path): not a seccomp profile (\(describe(error)))")
    } catch {
        throw PlashError.failure("seccomp profile \(path): \(error)")
    }

    // Write both files beside their final names and rename them into place, BPF
    // last-but-one and the profile copy last: plash-exec trusts the BPF only when
    // the copy matches, so a reader never sees a half-written pair.
    let dir = store + "/seccomp"
    try makeDirectories(dir, step: "create")
    let staging = "\(dir)/.tmp-\(getpid())"
    let fd = open(staging + ".bpf", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw PlashError.system("create", staging + ".bpf") }
    do {
        try filter.exportBPF(to: fd)
        close(fd)
    } catch {
        close(fd)
        throw PlashError.failure("seccomp profile \(path): \(error)")
    }
    try writeBytes(staging + ".json", bytes)
    try check(rename(staging + ".bpf", cached.bpf), "rename", cached.bpf)
    try check(rename(staging + ".json", cached.profile), "rename", cached.profile)
    return cached.bpf
}

func seccompFilter(from json: Data) throws -> SeccompFilter {
    let profile = try JSONDecoder().decode(SeccompProfile.self, from: json)
    let defaultErrno = profile.defaultErrnoRet.map(Int32.init) ?? EPERM
    let defaultAction = try action(profile.defaultAction, errno: defaultErrno)
    var architectures = (profile.architectures ?? []).map(architecture)
    for entry in profile.archMap ?? [] where architecture(entry.architecture) == nativeArchitecture {
        architectures += [architecture(entry.architecture)] + (entry.subArchitectures ?? []).map(architecture)
    }
    let filter = try SeccompFilter(defaultAction: defaultAction, architectures: architectures)
    for entry in profile.syscalls ?? [] where applies(entry) {
        let names = (entry.names ?? []) + (entry.name.map { [$0] } ?? [])
        let ruleAction = try action(entry.action, errno: entry.errnoRet.map(Int32.init) ?? defaultErrno)
        let conditions = try (entry.args ?? []).map { argument -> SeccompCondition in
            guard let op = operators[argument.op] else { throw PlashError.failure("unsupported operator \"\(argument.op)\"") }
            return SeccompCondition(argument.index, op, argument.value, argument.valueTwo ?? 0)
        }
        for name in names { try filter.add(SeccompRule(name, ruleAction, conditions)) }
    }
    return filter
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

/// "SCMP_ARCH_X86_64" -> "x86_64", libseccomp's name.
func architecture(_ name: String) -> String {
    name.hasPrefix("SCMP_ARCH_") ? String(name.dropFirst(10)).lowercased() : name.lowercased()
}

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

func describe(_ error: DecodingError) -> String {
    switch error {
    case .dataCorrupted(let context): return context.underlyingError.map { "\($0)" } ?? context.debugDescription
    case .keyNotFound(let key, _): return "missing \"\(key.stringValue)\""
    case .typeMismatch(_, let context), .valueNotFound(_, let context):
        return "bad value at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
    @unknown default: return "\(error)"
    }
}
