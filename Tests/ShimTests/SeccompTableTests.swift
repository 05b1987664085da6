import CSeccomp
import Foundation
import PlashSystem
import PlashTestSupport
import Testing

// The default filter, row by row, as docs/limits.md states it: the code's list must be
// that table, and every row is probed from inside a container. `probe syscall` makes
// each call at an instruction that its own filter stops and answers "passed" for, so
// no call on the list ever reaches the kernel, filtered or not; what plash's filter
// answers takes precedence (seccomp(2): ERRNO and KILL over USER_NOTIF).

/// One row of the table: system calls, when they are refused, and the errno.
struct DeniedCalls {
    enum When: Equatable {
        case always
        /// Any of these flags set in the argument.
        case flags(argument: UInt32, [String])
        /// The argument's low 32 bits equal to one of these.
        case request(argument: UInt32, [String])
    }
    var names: [String]
    var when: When
    var answer: String
}

/// The kernel's numbers for the names the table uses (linux/sched.h, asm-generic/ioctls.h).
let kernelConstants: [String: UInt64] = [
    "CLONE_NEWNS": 0x0002_0000, "CLONE_NEWCGROUP": 0x0200_0000, "CLONE_NEWUTS": 0x0400_0000,
    "CLONE_NEWIPC": 0x0800_0000, "CLONE_NEWUSER": 0x1000_0000, "CLONE_NEWPID": 0x2000_0000,
    "CLONE_NEWNET": 0x4000_0000, "TIOCSTI": 0x5412, "TIOCLINUX": 0x541C,
]
let errnoValues: [String: Int32] = ["EPERM": EPERM, "ENOSYS": ENOSYS]

/// The rows of the table that follows `heading` in a file of docs/.
func documentedTable(_ file: String, after heading: String) throws -> [[String]] {
    let text = try String(contentsOf: repository.appendingPathComponent(file), encoding: .utf8)
    let section = try #require(text.components(separatedBy: heading + "\n").dropFirst().first, "\(file): no \(heading)")
    let lines = section.split(separator: "\n", omittingEmptySubsequences: false).drop { !$0.hasPrefix("|") }
    return lines.prefix { $0.hasPrefix("|") }.dropFirst(2).map { line in
        line.dropFirst().dropLast().components(separatedBy: " | ").map { $0.trimmingCharacters(in: .whitespaces) }
    }
}

/// The words in backquotes.
func quotedWords(_ text: String) -> [String] {
    text.split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
}

func documentedDefaultFilter() throws -> [DeniedCalls] {
    try documentedTable("docs/limits.md", after: "## The default filter").map { cells in
        let names = quotedWords(cells[0]), when = cells[1]
        let argument = when.components(separatedBy: "argument ").dropFirst().first.flatMap { UInt32(String($0.prefix(1))) }
        if when == "always" { return DeniedCalls(names: names, when: .always, answer: cells[2]) }
        let index = try #require(argument, "\(cells): which argument?")
        let constants = quotedWords(when)
        return DeniedCalls(names: names, when: when.contains("low 32 bits") ? .request(argument: index, constants)
                                                                           : .flags(argument: index, constants),
                           answer: cells[2])
    }
}

/// The table as the code's rules would state it.
func rules(_ table: [DeniedCalls]) throws -> [SeccompRule] {
    try table.flatMap { row in
        let action = SeccompAction.errno(try #require(errnoValues[row.answer], "errno \(row.answer)"))
        return try row.names.flatMap { name -> [SeccompRule] in
            switch row.when {
            case .always:
                return [SeccompRule(name, action)]
            case .flags(let argument, let flags):
                return try flags.map { flag in
                    let value = try #require(kernelConstants[flag], "\(flag)")
                    return SeccompRule(name, action, [SeccompCondition(argument, .maskedEqual, value, value)])
                }
            case .request(let argument, let requests):
                return try requests.map { request in
                    let value = try #require(kernelConstants[request], "\(request)")
                    return SeccompRule(name, action, [SeccompCondition(argument, .maskedEqual, 0xFFFF_FFFF, value)])
                }
            }
        }
    }
}

@Test func theDefaultFiltersListIsTheTableInTheDocs() throws {
    let documented = try rules(documentedDefaultFilter())
    #expect(documented.count > 40)
    for rule in defaultSeccompRules where !documented.contains(rule) {
        Issue.record("in the code, not in docs/limits.md: \(rule)")
    }
    for rule in documented where !defaultSeccompRules.contains(rule) {
        Issue.record("in docs/limits.md, not in the code: \(rule)")
    }
}

/// One call for `probe syscall` and what the default filter answers it.
struct ProbedCall {
    var what: String
    var call: String
    var answer: String
}

/// Every row of the table as calls of the 64-bit ABI and, where `thirtyTwoBit`, of
/// 32-bit x86 (through int 0x80, with that ABI's numbers), each with a call just past
/// the row's condition that the filter must let through.
func probedCalls(_ table: [DeniedCalls], thirtyTwoBit: Bool) throws -> [ProbedCall] {
    let sigchld: UInt64 = 17
    var calls: [ProbedCall] = []
    for (abi, architecture) in [("64", "x86_64"), ("32", "x86")] where abi == "64" || thirtyTwoBit {
        let token = seccomp_arch_resolve_name(architecture)
        for row in table {
            for name in row.names {
                let number = seccomp_syscall_resolve_name_arch(token, name)
                // Negative: the ABI has no such call (kexec_file_load on x86), nor can a filter name it.
                guard number >= 0 else { continue }
                func add(_ what: String, _ arguments: [UInt64], _ answer: String) {
                    let call = ([abi, String(number)] + arguments.map { "0x" + String($0, radix: 16) }).joined(separator: ",")
                    calls.append(ProbedCall(what: "\(architecture) \(name)\(what)", call: call, answer: answer))
                }
                switch row.when {
                case .always:
                    add("", [], row.answer)
                case .flags(let argument, let flags):
                    for flag in flags {
                        var arguments = [UInt64](repeating: 0, count: Int(argument) + 1)
                        arguments[Int(argument)] = kernelConstants[flag]! | sigchld
                        add(" with \(flag)", arguments, row.answer)
                    }
                    var arguments = [UInt64](repeating: 0, count: Int(argument) + 1)
                    arguments[Int(argument)] = sigchld
                    add(" without a flag of the table", arguments, "passed")
                case .request(let argument, let requests):
                    for request in requests {
                        var arguments = [UInt64](repeating: 0, count: Int(argument) + 1)
                        arguments[Int(argument)] = kernelConstants[request]!
                        add(" \(request)", arguments, row.answer)
                        if abi == "64" {
                            arguments[Int(argument)] |= 1 << 32
                            add(" \(request) with bit 32 set", arguments, row.answer)
                        }
                    }
                    var arguments = [UInt64](repeating: 0, count: Int(argument) + 1)
                    arguments[Int(argument)] = 0x5401   // TCGETS
                    add(" of another request", arguments, "passed")
                }
            }
        }
        let getpid = seccomp_syscall_resolve_name_arch(token, "getpid")
        calls.append(ProbedCall(what: "\(architecture) getpid", call: "\(abi),\(getpid)", answer: "passed"))
    }
    return calls
}

/// Whether this kernel runs 32-bit x86 system calls (CONFIG_IA32_EMULATION, not turned off).
func thirtyTwoBitCallsWork() throws -> Bool {
    let result = try exec(["--root", probeRoot, "--", "probe", "syscall", "32,20"])
    if result.stdout == "passed\n" { return true }
    if mustRun { Issue.record("32-bit system calls do not work here: \(result)") }
    return false
}

@Test func theDefaultFilterAnswersEveryCallOfItsTableAsTheTableSays() throws {
    let calls = try probedCalls(documentedDefaultFilter(), thirtyTwoBit: thirtyTwoBitCallsWork())
    let arguments = ["--root", try probeRoot, "--", "probe", "syscall"] + calls.map(\.call)
    let unfiltered = try exec(arguments)
    let filtered = try exec(["--seccomp", "default"] + arguments)
    #expect(unfiltered.status == 0 && filtered.status == 0, "\(unfiltered)\n\(filtered)")
    let without = unfiltered.stdout.split(separator: "\n"), with = filtered.stdout.split(separator: "\n")
    #expect(without.count == calls.count && with.count == calls.count, "\(unfiltered)\n\(filtered)")
    for (index, call) in calls.enumerated() where index < min(without.count, with.count) {
        // Without the filter every call gets as far as the probe's own answer.
        #expect(without[index] == "passed", "\(call.what) (\(call.call)) without a filter: \(without[index])")
        #expect(with[index] == call.answer, "\(call.what) (\(call.call)) under --seccomp default: \(with[index])")
    }
}

@Test func theDefaultFilterKillsAProgramMakingAnX32SystemCall() throws {
    // getpid, made for real: ENOSYS where the kernel runs no x32 calls (most), else ok.
    let arguments = ["--root", try probeRoot, "--", "probe", "syscall", "x32,39"]
    let unfiltered = try exec(arguments)
    #expect(unfiltered.stdout == "ENOSYS\n" || unfiltered.stdout == "ok\n", "\(unfiltered)")
    let (filtered, ended) = try runWithDeadline(plashExec, ["--seccomp", "default"] + arguments)
    #expect(ended && filtered.signal == SIGSYS && filtered.stdout == "", "\(filtered)")
}

/// A profile in Docker's format that allows everything of x86_64 and x86: x32 is not on it.
let allowingProfile = #"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]}"#

@Test(arguments: ["default", "profile"])
func anX32SystemCallFromOneThreadKillsTheWholeProgram(filter: String) throws {
    // The main thread waits for the calling one and then says "joined": under a filter
    // that killed only the calling thread, the program would go on and exit 0.
    let arguments = ["--root", try probeRoot, "--", "probe", "thread", "x32,39"]
    let unfiltered = try exec(arguments)
    #expect(unfiltered.stdout == "ENOSYS\njoined\n" || unfiltered.stdout == "ok\njoined\n", "\(unfiltered)")
    let seccomp = filter == "default" ? "default" : try writeProfile(allowingProfile)
    // A store of its own: the profile is compiled by this plash.
    let (filtered, ended) = try runWithDeadline(plashExec, ["--seccomp", seccomp] + arguments,
                                                environment: ["PLASH_DATA": makeDirectory("store")])
    #expect(ended && filtered.signal == SIGSYS && filtered.stdout == "", "\(filtered)")
}

@Test func aProfileCompiledByAnOlderPlashIsCompiledAgain() throws {
    // What plash kept before version 2 of a profile's key: a symlink named by the bare
    // SHA-256 of the profile, to the program compiled then; here one that allows
    // everything, x32 included, and is named as plash names a program it compiled.
    let store = makeDirectory("store"), profile = try writeProfile(allowingProfile)
    let bytes = Array(allowingProfile.utf8), compiled = StoreLayout(path: store).seccomp
    let allowEverything: [UInt8] = [0x06, 0, 0, 0, 0x00, 0x00, 0xff, 0x7f]   // BPF_RET | BPF_K, SECCOMP_RET_ALLOW
    let name = seccompProgramName(profile: bytes, program: allowEverything)
    var hash = SHA256()
    hash.update(bytes)
    #expect(mkdir(compiled, 0o755) == 0)
    #expect(FileManager.default.createFile(atPath: compiled + "/" + name, contents: Data(allowEverything),
                                           attributes: [.posixPermissions: 0o644]))
    #expect(symlink(name, compiled + "/" + hash.hexDigest()) == 0)
    let (result, ended) = try runWithDeadline(plashExec, ["--seccomp", profile, "--root", try probeRoot, "--",
                                                          "probe", "thread", "x32,39"], environment: ["PLASH_DATA": store])
    #expect(ended && result.signal == SIGSYS && result.stdout == "", "\(result)")
}

// --isolate's own rules: no call that gives a file a mode may set S_ISUID or S_ISGID.

/// The argument that holds the mode, for each call that sets one (the kernel's ABI,
/// the same for 32-bit x86).
let modeArguments: [String: Int] = ["chmod": 1, "fchmod": 1, "fchmodat": 2, "fchmodat2": 2, "open": 2, "openat": 3,
                                    "creat": 1, "mknod": 1, "mknodat": 2]

/// The calls docs/plash-exec.md says --isolate refuses set-id bits to.
func documentedModeCalls() throws -> [String] {
    let column = try isolateColumn("set-id bits, file capabilities")
    let list = try #require(column.components(separatedBy: "a file a mode (").dropFirst().first?.split(separator: ")").first,
                            "\(column)")
    return list.components(separatedBy: ", ")
}

@Test func isolatesSetIDRulesCoverEveryCallThatSetsAModeAndTheDocsNameThem() throws {
    let coded = Set(isolateSeccompRules.filter { !$0.conditions.isEmpty }.map(\.syscall))
    #expect(coded == Set(modeArguments.keys), "the code's rules are for \(coded.sorted())")
    let documented = try documentedModeCalls()
    #expect(Set(documented) == coded, "docs/plash-exec.md names \(documented)")
}

@Test func anIsolatedContainerSetsNoSetIDBitThroughAnyCallThatSetsAMode() throws {
    var calls: [ProbedCall] = []
    let thirtyTwoBit = try thirtyTwoBitCallsWork()
    for (abi, architecture) in [("64", "x86_64"), ("32", "x86")] where abi == "64" || thirtyTwoBit {
        let token = seccomp_arch_resolve_name(architecture)
        for name in try documentedModeCalls() {
            let number = seccomp_syscall_resolve_name_arch(token, name)
            guard number >= 0, let index = modeArguments[name] else { continue }   // no creat on some ABIs
            for (mode, answer) in [(0o4755, "EPERM"), (0o2755, "EPERM"), (0o755, "passed")] {
                var arguments = [String](repeating: "0", count: index + 1)
                arguments[index] = "0" + String(mode, radix: 8)
                calls.append(ProbedCall(what: "\(architecture) \(name) mode \(arguments[index])",
                                        call: ([abi, String(number)] + arguments).joined(separator: ","), answer: answer))
            }
        }
    }
    let probe = ["--root", try probeRoot, "--", "probe", "syscall"] + calls.map(\.call)
    let unconfined = try exec(probe)
    let isolated = try execInThrowAwayPIDNamespace(["--isolate"] + probe)
    let without = unconfined.stdout.split(separator: "\n"), with = isolated.stdout.split(separator: "\n")
    #expect(without.count == calls.count && with.count == calls.count, "\(unconfined)\n\(isolated)")
    for (index, call) in calls.enumerated() where index < min(without.count, with.count) {
        #expect(without[index] == "passed", "\(call.what) without --isolate: \(without[index])")
        #expect(with[index] == call.answer, "\(call.what) under --isolate: \(with[index])")
    }
}
