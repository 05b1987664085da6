import Foundation
import PlashTestSupport
import Testing

/// Thousands of mutated inputs fed to the built binaries: tars to import-tar, seccomp
/// profiles to `plash seccomp` and plash-exec, Plashfiles to build, and broken store
/// trees to every command that reads the store. None may end by a signal, hang, or say
/// more than one line of its own. The generator is seeded, so a failure repeats; its
/// message names the input, which stays in the scratch directory.
@Suite(.serialized) struct FuzzTests {
    @Test func mutatedTarsFailWithOneLineAndLeaveNothing() throws {
        let store = TestStore()
        _ = try store.id(["init"])
        var random = SeededRandom(seed: 9)
        let base = tarArchive(sampleEntries)
        let dir = makeDirectory("fuzz-tar")
        var inputs: [(String, [String])] = []
        for n in 0..<1200 {
            let path = "\(dir)/\(n).tar"
            FileManager.default.createFile(atPath: path, contents: Data(mutateTar(base, &random)))
            inputs.append((path, ["import-tar", path]))
        }
        let failures = runAll(inputs.map { $0.1 }, store: store, ownLines: { line in
            !(line.hasPrefix("--> ") || line == "--:" || line.hasSuffix(" entries"))
        })
        #expect(failures.isEmpty, "\(failures.prefix(5).joined(separator: "\n"))")
        #expect(store.stagingDirectories.isEmpty, "\(store.stagingDirectories)")
    }

    @Test func mutatedSeccompProfilesFailWithOneLine() throws {
        let store = TestStore()
        var random = SeededRandom(seed: 11)
        let dir = makeDirectory("fuzz-seccomp")
        var invocations: [[String]] = [], execInvocations: [[String]] = []
        for n in 0..<1000 {
            let path = "\(dir)/\(n).json"
            FileManager.default.createFile(atPath: path, contents: Data(mutateText(sampleProfile, &random).utf8))
            invocations.append(["seccomp", path])
            if n % 4 == 0 {
                execInvocations.append(["--seccomp", path, "--root", try busyboxRoot, "--", "/bin/true"])
            }
        }
        // A usage error's line is followed by the usage; plash's own lines start `plash`.
        let failures = runAll(invocations, store: store, ownLines: { $0.hasPrefix("plash") })
            + runAll(execInvocations, store: store, executable: plashExec, ownLines: { $0.hasPrefix("plash") })
        #expect(failures.isEmpty, "\(failures.prefix(5).joined(separator: "\n"))")
    }

    @Test func mutatedPlashfilesFailWithOneLine() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        var random = SeededRandom(seed: 13)
        let dir = makeDirectory("fuzz-plashfile")
        var invocations: [[String]] = []
        for n in 0..<1000 {
            let path = "\(dir)/\(n)"
            var text = mutateText(samplePlashfile, &random)
            if random.next(8) == 0 { text = text.replacingOccurrences(of: "\n", with: "\r\n") }
            if random.next(16) == 0 { text += "\n--eval-file \(path)\n" }
            FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
            invocations.append(["build", "--eval-file", path])
        }
        // Build steps print their own output and `--> CMD` lines; plash's own lines
        // start with `plash:`.
        let failures = runAll(invocations, store: store, ownLines: { $0.hasPrefix("plash") })
        #expect(failures.isEmpty, "\(failures.prefix(5).joined(separator: "\n"))")
    }

    /// Servers that trickle, never end, announce or send too much, or send heads without
    /// end, behind every command that downloads or uploads: each ends within 10 s (its
    /// bound, with PLASH_HTTP_TIMEOUT=1) with one line and exit 1, and the store stays as
    /// it was. (An endless gzip stream to disk: HostileServerTests, on a small tmpfs.)
    @Test func hostileServersAreLeftWithOneLineWithinTheirBound() throws {
        let store = TestStore(), pusher = TestStore()
        _ = try store.id(["init"])
        let id = try pusher.id(["import", "busybox"])
        let server = try WebServer(root: makeDirectory("web"))
        defer { server.stop() }
        let trickling = try WebServer(root: makeDirectory("web"), trickleTLS: true)
        defer { trickling.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        let routes = ["stall", "endless", "announce-huge", "trickle", "trickle-head", "huge-head", "many-fields",
                      "endless-interim", "endless-trailers", "endless-gzip"]
        let timeout = ["PLASH_HTTP_TIMEOUT": "1"]
        let ownLines: @Sendable (String) -> Bool = { $0.hasPrefix("plash") }
        // A registry's /v2/NAME/... is the server's /NAME.
        var failures = runAll(routes.flatMap { route in
            (route == "endless-gzip" ? [] : [["import-url", "\(base)/\(route)"]])
                + [["build", "--eval-url", "\(base)/\(route)"], ["pull", "127.0.0.1:\(server.port)/\(route)/x:1"]]
        }, store: store, environment: timeout, seconds: 10, mustFail: true, ownLines: ownLines)
        for route in routes {
            failures += runAll([["import-lxc", "alpine"]], store: store,
                               environment: timeout.merging(["PLASH_LXC_SERVER": "\(base)/\(route)#"]) { $1 },
                               seconds: 10, mustFail: true, ownLines: ownLines)
        }
        failures += runAll(routes.map { ["push", id, "127.0.0.1:\(server.port)/\($0)/x:1"] }, store: pusher, environment: timeout,
                           seconds: 10, mustFail: true, ownLines: ownLines)
        let handshake = "https://127.0.0.1:\(trickling.port)/x"
        failures += runAll([["import-url", handshake], ["build", "--eval-url", handshake]], store: store, environment: timeout,
                           seconds: 10, mustFail: true, ownLines: ownLines)
        #expect(failures.isEmpty, "\(failures.prefix(5).joined(separator: "\n"))")
        #expect(store.indexedIDs.isEmpty && store.stagingDirectories.isEmpty, "\(store.indexedIDs) \(store.stagingDirectories)")
        #expect(pusher.indexedIDs == [Int(id)!] && pusher.stagingDirectories.isEmpty, "\(pusher.indexedIDs) \(pusher.stagingDirectories)")
    }

    @Test func brokenStoreTreesFailWithOneLine() throws {
        var random = SeededRandom(seed: 17)
        var failures: [String] = []
        for _ in 0..<120 {
            let store = TestStore()
            _ = try store.id(["build", "--from", "busybox", "--run", "touch /a", "--layer", "--run", "touch /b"])
            _ = try store.id(["map", "named", "2"])
            breakStore(store.data, &random)
            let invocations: [[String]] = [
                ["ls"], ["run", "2", "--", "true"], ["run", "named", "--", "true"], ["nodepath", "1"],
                ["build", "--from", "1", "--run", "true"], ["map", "other", "named"], ["rm", "3"], ["clean"],
            ]
            failures += runAll(invocations, store: store, ownLines: { $0.hasPrefix("plash") })
            failures += runAll([["2", "--", "true"], ["named", "--", "true"]], store: store,
                               executable: plashExec, ownLines: { $0.hasPrefix("plash") })
        }
        #expect(failures.isEmpty, "\(failures.prefix(5).joined(separator: "\n"))")
    }

    /// Local inputs no mutation makes: FIFOs nobody writes to, devices that never end or
    /// are empty, directories, names that are not UTF-8 and scripts past execve's limit,
    /// wherever a command takes a file.
    @Test func hostileLocalFilesFailWithOneLineAndNeverHang() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let root = try busyboxRoot
        let dir = makeDirectory("fuzz-local")
        #expect(mkfifo(dir + "/fifo", 0o644) == 0)
        // Names of bytes that are not UTF-8, loose and in a tar; over-long scripts.
        let made = try shell("""
            cd '\(dir)' && mkdir bytes && printf 1 > bytes/a$'\\xff' && printf 2 > bytes/a$'\\xfe' && mkdir bytes/d$'\\xc3' \\
              && ln -s a$'\\xff' bytes/l$'\\x80' && mkfifo bytes/f$'\\xfe' && tar -cf bytes.tar bytes
            """)
        #expect(made.status == 0, "\(made)")
        let longRun = "--run\n" + String(repeating: "true # padding padding padding padding padding padding\n", count: 4000)
        let longFile = "--write-file /a/b/long\n" + String(repeating: "a line of text, again and again and again\n", count: 6000)
        try longRun.write(toFile: dir + "/long-run", atomically: true, encoding: .utf8)
        try longFile.write(toFile: dir + "/long-file", atomically: true, encoding: .utf8)
        try ("#!/usr/bin/env plash\n--from busybox\n" + longRun).write(toFile: dir + "/long-plashfile", atomically: true, encoding: .utf8)
        let files = [dir + "/fifo", "/dev/zero", "/dev/null", "/dev/urandom", "/dev/full", dir, dir + "/bytes", dir + "/bytes.tar",
                     dir + "/long-run", dir + "/long-file", dir + "/long-plashfile"]
        var invocations: [[String]] = [], execInvocations: [[String]] = []
        for file in files {
            invocations += [
                ["seccomp", file], ["build", "--eval-file", file], [file], ["import-tar", file],
                ["build", "--from", "busybox", "--hash-path", file, "--run", "true"],
                ["build", "--from", "busybox", "--eval-file", file],
            ]
            execInvocations += [
                ["--env-file", file, "--root", root, "--", "/bin/true"],
                ["--seccomp", file, "--root", root, "--", "/bin/true"],
            ]
        }
        // Build steps print their own output and `--> CMD` lines; plash's own lines
        // start with `plash`.
        let failures = runAll(invocations, store: store, ownLines: { $0.hasPrefix("plash") })
            + runAll(execInvocations, store: store, executable: plashExec, ownLines: { $0.hasPrefix("plash") })
        #expect(failures.isEmpty, "\(failures.prefix(5).joined(separator: "\n"))")
        #expect(store.stagingDirectories.isEmpty, "\(store.stagingDirectories)")
    }
}

// MARK: running

/// Runs every invocation (four at a time), each under a time limit of `seconds`, and
/// returns what went wrong: an end by a signal, a hang, more than one line for which
/// `ownLines` holds, or with `mustFail` an exit status of 0.
func runAll(_ invocations: [[String]], store: TestStore, executable: String = plash, environment extra: [String: String] = [:],
            seconds: Int = 20, mustFail: Bool = false, ownLines: @escaping @Sendable (String) -> Bool) -> [String] {
    let environment = store.environment.merging(extra) { $1 }
    let failures = Shared([String]())
    let next = Shared(0)
    let workers = (0..<4).map { _ in
        Thread {
            while true {
                let index: Int = next.withValue { value in defer { value += 1 }; return value }
                guard index < invocations.count else { break }
                let arguments = invocations[index]
                let shown = ([executable] + arguments).joined(separator: " ")
                // In a scratch directory: build steps share the working directory.
                guard let result = try? run("/usr/bin/timeout", ["-s", "KILL", String(seconds), executable] + arguments,
                                            environment: environment, directory: store.home) else {
                    failures.withValue { $0.append("\(shown): cannot start") }
                    continue
                }
                // timeout exits 128+N when plash ended by signal N (137 also when it hung).
                if result.status >= 128 || result.signal != nil {
                    failures.withValue { $0.append("\(shown): ended by a signal or hung: \(result)") }
                    continue
                }
                let own = result.stderr.split(separator: "\n").map(String.init).filter(ownLines)
                if own.count > 1 {
                    failures.withValue { $0.append("\(shown): \(own.count) lines: \(result.stderr.prefix(400))") }
                }
                if mustFail && result.status == 0 {
                    failures.withValue { $0.append("\(shown): exit 0: \(result.stderr.prefix(400))") }
                }
            }
        }
    }
    workers.forEach { $0.start() }
    while workers.contains(where: { !$0.isFinished }) { usleep(5000) }
    return failures.value
}

/// A value that threads change under a lock.
final class Shared<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    func withValue<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&stored)
    }
    var value: Value { withValue { $0 } }
}

/// xorshift64*: the same inputs on every run.
struct SeededRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
    mutating func next(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

// MARK: tars

struct SampleEntry {
    var name: String
    var type: UInt8
    var body: [UInt8] = []
    var link = ""
    var mode = 0o644
}

let sampleEntries = [
    SampleEntry(name: "bin/", type: UInt8(ascii: "5"), mode: 0o755),
    SampleEntry(name: "bin/sh", type: UInt8(ascii: "0"), body: Array("#!/bin/busybox sh\n".utf8), mode: 0o755),
    SampleEntry(name: "bin/ls", type: UInt8(ascii: "2"), link: "sh"),
    SampleEntry(name: "bin/cat", type: UInt8(ascii: "1"), link: "bin/sh"),
    SampleEntry(name: "etc/", type: UInt8(ascii: "5"), mode: 0o755),
    SampleEntry(name: "etc/passwd", type: UInt8(ascii: "0"), body: Array("root:x:0:0:root:/root:/bin/sh\n".utf8)),
    SampleEntry(name: "dev/", type: UInt8(ascii: "5"), mode: 0o755),
    SampleEntry(name: "dev/null", type: UInt8(ascii: "3"), mode: 0o666),
]

/// A ustar archive of `entries`, with the two zero blocks at its end.
func tarArchive(_ entries: [SampleEntry]) -> [UInt8] {
    var archive: [UInt8] = []
    for entry in entries {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, width: Int) {
            for (i, byte) in text.utf8.prefix(width).enumerated() { header[offset + i] = byte }
        }
        func octal(_ value: Int, at offset: Int, width: Int) {
            put(String(String(value, radix: 8).suffix(width - 1)).leftPadded(to: width - 1), at: offset, width: width - 1)
        }
        put(entry.name, at: 0, width: 100)
        octal(entry.mode, at: 100, width: 8)
        octal(0, at: 108, width: 8)
        octal(0, at: 116, width: 8)
        octal(entry.body.count, at: 124, width: 12)
        octal(1_700_000_000, at: 136, width: 12)
        header[156] = entry.type
        put(entry.link, at: 157, width: 100)
        put("ustar\u{0}00", at: 257, width: 8)
        if entry.type == UInt8(ascii: "3") { octal(1, at: 329, width: 8); octal(3, at: 337, width: 8) }
        setChecksum(&header, at: 0)
        archive += header
        archive += entry.body
        archive += [UInt8](repeating: 0, count: (512 - entry.body.count % 512) % 512)
    }
    return archive + [UInt8](repeating: 0, count: 1024)
}

func setChecksum(_ archive: inout [UInt8], at offset: Int) {
    for i in 148..<156 { archive[offset + i] = 32 }
    let sum = archive[offset..<offset + 512].reduce(0) { $0 + Int($1) }
    let text = Array(String(String(sum, radix: 8)).leftPadded(to: 6).utf8) + [0, 32]
    for (i, byte) in text.enumerated() { archive[offset + 148 + i] = byte }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(width - count, 0)) + self }
}

/// One to four mutations: flipped bytes, a field set to something extreme (with the
/// checksum fixed half of the time, so the field itself is what is tested), a cut, a
/// block repeated, a hostile name.
func mutateTar(_ base: [UInt8], _ random: inout SeededRandom) -> [UInt8] {
    var tar = base
    let headers = stride(from: 0, to: base.count - 1024, by: 512).filter { offset in
        base[offset + 257..<offset + 262].elementsEqual("ustar".utf8)
    }
    for _ in 0...random.next(4) {
        let usable = headers.filter { $0 + 512 <= tar.count }
        guard !usable.isEmpty else { break }
        let header = usable[random.next(usable.count)]
        switch random.next(9) {
        case 0:
            for _ in 0...random.next(8) { tar[random.next(tar.count)] = UInt8(truncatingIfNeeded: random.next()) }
        case 1:
            let field = [(124, 12), (100, 8), (108, 8), (116, 8), (136, 12), (329, 8), (337, 8)][random.next(7)]
            let values = ["77777777777", "7777777777777777777777", "-1", "\u{80}\u{ff}\u{ff}\u{ff}\u{ff}\u{ff}\u{ff}\u{ff}\u{ff}\u{ff}\u{ff}\u{ff}",
                          "99999999999", "", "0x10", String(repeating: "7", count: field.1)]
            let value = Array(values[random.next(values.count)].utf8)
            for i in 0..<field.1 { tar[header + field.0 + i] = i < value.count ? value[i] : 0 }
            if random.next(2) == 0 { setChecksum(&tar, at: header) }
        case 2:
            let names = ["../../etc/evil", "/abs", "bin/ls/x", "a/../../b", "", ".", "bin/cat/../../x",
                         String(repeating: "a/", count: 60), "dev/null/x", "./././etc"]
            let name = Array(names[random.next(names.count)].utf8)
            for i in 0..<100 { tar[header + i] = i < name.count ? name[i] : 0 }
            setChecksum(&tar, at: header)
        case 3:
            let types = Array("0123456789gxLKSAVDM\u{0}".utf8)
            tar[header + 156] = types[random.next(types.count)]
            setChecksum(&tar, at: header)
        case 4:
            tar = Array(tar.prefix(random.next(tar.count)))
        case 5:
            let start = random.next(max(tar.count / 512, 1)) * 512
            tar.insert(contentsOf: tar[start..<min(start + 512, tar.count)], at: start)
        case 6:
            tar = Array(tar.prefix(max(tar.count - 1024, 0)))  // no end-of-archive blocks
        case 7:
            let links = ["/etc", "../..", "/", "bin", "../../../../tmp"]
            let link = Array(links[random.next(links.count)].utf8)
            for i in 0..<100 { tar[header + 157 + i] = i < link.count ? link[i] : 0 }
            tar[header + 156] = UInt8(ascii: random.next(2) == 0 ? "1" : "2")
            setChecksum(&tar, at: header)
        default:
            tar = [UInt8](repeating: 0, count: [0, 1, 511, 512, 1024, 10240][random.next(6)])
        }
        if tar.count < 1024 { break }
    }
    return tar
}

// MARK: text inputs

let sampleProfile = """
    {
      "defaultAction": "SCMP_ACT_ERRNO",
      "defaultErrnoRet": 1,
      "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
      "syscalls": [
        {"names": ["read", "write", "exit", "exit_group", "execve", "brk", "mmap", "munmap", "arch_prctl",
                   "set_tid_address", "rt_sigaction", "rt_sigprocmask", "getuid", "openat", "close", "fstat",
                   "newfstatat", "prlimit64", "getrandom", "mprotect", "rseq", "set_robust_list", "getpid"],
         "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
         "includes": {"arches": ["amd64"]}, "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
      ]
    }
    """

let samplePlashfile = """
    #!/usr/bin/env plash
    --from 1
    --run
    touch /a
    echo hi
    --layer
    --env HOME
    --run true
    --entrypoint /bin/sh
    """

/// Token-level mutations: words dropped, doubled, swapped for extreme values or
/// punctuation, lines cut.
func mutateText(_ text: String, _ random: inout SeededRandom) -> String {
    var tokens = tokenize(text)
    let replacements = ["", "-1", "1e30", "99999999999999999999", "null", "[]", "{}", "\"\"", "\"x\"", "\u{0}",
                        "--run", "--layer", "--from", "--eval-file", "--entrypoint", "SCMP_ACT_KILL", "\"SCMP_ACT_KILL_PROCESS\"",
                        "\"amd64\"", "\"arm64\"", "6", "-", "--", "\"", "\n", "\r", "#", "\\", "'", "exit 3",
                        "\"SCMP_CMP_MASKED_EQ\"", "4294967296", "0.5", "true", "false"]
    for _ in 0...random.next(5) where !tokens.isEmpty {
        let i = random.next(tokens.count)
        switch random.next(4) {
        case 0: tokens.remove(at: i)
        case 1: tokens.insert(tokens[i], at: i)
        case 2: tokens[i] = replacements[random.next(replacements.count)]
        default: tokens = Array(tokens.prefix(i))
        }
    }
    return tokens.joined()
}

/// Words, numbers, strings and single punctuation, with the spaces between them kept
/// as tokens of their own.
func tokenize(_ text: String) -> [String] {
    var tokens: [String] = []
    var current = ""
    var kind = 0
    for character in text {
        let k = character.isLetter || character.isNumber || "_-/.".contains(character) ? 1 : (character.isWhitespace ? 2 : 3)
        if k != kind || k == 3 {
            if !current.isEmpty { tokens.append(current) }
            current = ""
            kind = k
        }
        current.append(character)
    }
    if !current.isEmpty { tokens.append(current) }
    return tokens
}

// MARK: stores

/// Breaks a store with two images and a name in one to three ways.
func breakStore(_ data: String, _ random: inout SeededRandom) {
    let fm = FileManager.default
    let targets = ["/", "..", "../..", "../layer/0", "../layer/0/1/_data", "../index/1/../..", "nowhere", "../index/9",
                   "../../../../../etc", "../layer/0/1/2/_data/../../../..", "../map/named", "/proc/self/root"]
    for _ in 0...random.next(3) {
        let target = targets[random.next(targets.count)]
        switch random.next(7) {
        case 0:
            try? fm.removeItem(atPath: data + "/index/2")
            try? fm.createSymbolicLink(atPath: data + "/index/2", withDestinationPath: target)
        case 1:
            try? fm.removeItem(atPath: data + "/map/named")
            try? fm.createSymbolicLink(atPath: data + "/map/named", withDestinationPath: target)
        case 2:
            let counters = ["9223372036854775807", "-5", "x", "", "99999999999999999999999", "2\n3", "0"]
            try? counters[random.next(counters.count)].write(toFile: data + "/counter", atomically: false, encoding: .utf8)
        case 3:
            try? fm.removeItem(atPath: data + "/layer/0/1/2/_data")
            if random.next(2) == 0 { fm.createFile(atPath: data + "/layer/0/1/2/_data", contents: Data("x".utf8)) }
        case 4:
            let dirs = ["index", "map", "cache", "tmp", "layer"]
            let dir = data + "/" + dirs[random.next(dirs.count)]
            try? fm.removeItem(atPath: dir)
            if random.next(2) == 0 { fm.createFile(atPath: dir, contents: Data()) }
        case 5:
            try? fm.createSymbolicLink(atPath: data + "/index/" + ["01", "-1", "3", "999999999999999999999"][random.next(4)],
                                       withDestinationPath: target)
        default:
            try? fm.createSymbolicLink(atPath: data + "/layer/0/1/" + String(random.next(5) + 3), withDestinationPath: target)
        }
    }
}
