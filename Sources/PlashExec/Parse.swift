#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

/// One option of plash-exec: parsing, `plash run`'s pass-through, `--help` and the
/// argv that gives a plan back (`execArguments`) all come from the table below, so an
/// option is declared once.
public struct ExecOption: Sendable {
    public let name: String
    /// The placeholder of its value in the help ("DIR"); nil for an option without one.
    public let value: String?
    /// Its lines in the help; the first starts beside the name.
    public let help: [String]
    /// The heading it is listed under in the help.
    public let group: String
    /// `plash run` passes it on; not the image options, since plash run names the image.
    public let passedByRun: Bool
    /// What it does to the plan, given its value ("" for an option without one).
    let apply: @Sendable (inout ExecPlan, String) throws -> Void
    /// The values that give a plan's setting back, one per time the option is given
    /// ("" for an option without one; none where the plan has the default).
    let values: @Sendable (ExecPlan) -> [String]
    /// For the options that add a bind: the value that makes `bind`, nil when this
    /// option makes another kind. Binds go back in their order: a later one may lie on
    /// an earlier one.
    let bindValue: (@Sendable (Bind) -> String?)?

    init(_ name: String, _ value: String?, _ group: String, _ help: [String], passedByRun: Bool = true,
         values: @escaping @Sendable (ExecPlan) -> [String] = { _ in [] },
         bindValue: (@Sendable (Bind) -> String?)? = nil,
         _ apply: @escaping @Sendable (inout ExecPlan, String) throws -> Void) {
        self.name = name
        self.value = value
        self.group = group
        self.help = help
        self.passedByRun = passedByRun
        self.values = values
        self.bindValue = bindValue
        self.apply = apply
    }

    public var takesValue: Bool { value != nil }
}

let limitsGroup = "Limits (a cgroup plash/NAME; cgroup v2 or v1)"

/// Every option of plash-exec, in the order of its help. (-h, --help and --version are
/// answered before this table is consulted.)
public let execOptions: [ExecOption] = [
    ExecOption("--root", "DIR", "Image", ["the image is the directory DIR (never written to)"], passedByRun: false,
               values: { if case .root(let dir) = $0.image { [dir] } else { [] } }) {
        try setImage(&$0, .root($1))
    },
    ExecOption("--lower", "DIR", "Image", ["a layer of the image, top first; repeat for each layer"],
               passedByRun: false, values: { if case .lowers(let dirs) = $0.image { dirs } else { [] } }) {
        if case .lowers(let lowers) = $0.image { $0.image = .lowers(lowers + [$1]) } else { try setImage(&$0, .lowers([$1])) }
    },
    ExecOption("--persist", "DIR", "Image", ["keep the container's writes in DIR (created if",
                                             "missing); without it they vanish at exit"],
               values: { $0.persist.map { [$0] } ?? [] }) {
        $0.persist = $1
    },
    ExecOption("--bind", "SRC[:DST]", "Sharing", ["bind the host path SRC to DST (default: SRC)"],
               bindValue: { $0 == Bind($0.source, $0.destination) ? $0.spec : nil }) {
        $0.binds.append(try parseBind($1, option: "--bind"))
    },
    ExecOption("--ro-bind", "SRC[:DST]", "Sharing", ["the same, read-only"],
               bindValue: { $0 == Bind($0.source, $0.destination, readOnly: true) ? $0.spec : nil }) {
        $0.binds.append(try parseBind($1, option: "--ro-bind"))
    },
    ExecOption("--bind-try", "SRC[:DST]", "Sharing", ["the same as --bind, but nothing when SRC is missing"],
               bindValue: { $0 == Bind.ifPresent($0.source, $0.destination) ? $0.spec : nil }) {
        let bind = try parseBind($1, option: "--bind-try")
        $0.binds.append(Bind.ifPresent(bind.source, bind.destination))
    },
    ExecOption("--tmpfs", "DIR", "Sharing", ["a new empty tmpfs on DIR inside (mode 1777)"],
               bindValue: { $0 == tmpfsBind($0.destination) ? $0.destination : nil }) {
        guard $1.hasPrefix("/") && $1 != "/" else { throw PlashError.usage("--tmpfs \($1): must be an absolute path, not /") }
        $0.binds.append(tmpfsBind($1))
    },
    ExecOption("--no-home", nil, "Sharing", ["do not share /home and $HOME"], values: { flag(!$0.shareHome) }) { plan, _ in plan.shareHome = false },
    ExecOption("--no-tmp", nil, "Sharing", ["do not share /tmp"], values: { flag(!$0.shareTmp) }) { plan, _ in plan.shareTmp = false },
    ExecOption("--ro-share", nil, "Sharing", ["share /home entry by entry, $HOME and the working",
                                              "directory read-only, each only where the image has",
                                              "nothing at its path (what a build step gets)"],
               values: { flag($0.readOnlyShares) }) { plan, _ in
        plan.readOnlyShares = true
    },
    ExecOption("--cwd", "DIR", "Sharing", ["start in DIR inside (default: the caller's working",
                                           "directory when it exists inside, else /)"],
               values: { $0.workingDirectory.map { [$0] } ?? [] }) {
        guard $1.hasPrefix("/") else { throw PlashError.usage("--cwd \($1): must be an absolute path") }
        $0.workingDirectory = $1
    },
    ExecOption("--env", "NAME=VALUE", "Environment", ["set NAME inside; --env NAME passes the caller's",
                                                      "value (so does PLASH_EXPORT=NAME:NAME... of the caller)"],
               values: { $0.environment }) {
        guard !$1.isEmpty && !$1.hasPrefix("=") else {
            throw PlashError.usage("--env \($1): expected NAME=VALUE or NAME")
        }
        $0.environment.append($1)
    },
    ExecOption("--entrypoint", "PROGRAM", "Environment", ["run PROGRAM instead of the image's Entrypoint, with",
                                                          "CMD as its arguments (none: not the image's Cmd);",
                                                          "--entrypoint '' runs CMD alone"],
               values: { $0.entrypoint.map(entrypointValue) ?? [] }) {
        $0.entrypoint = $1.isEmpty ? [] : [$1]
    },
    // Its lines are in the plan's environment, which --env gives back.
    ExecOption("--env-file", "FILE", "Environment", ["--env for each line of FILE (NAME=VALUE or NAME;",
                                                     "empty lines and lines starting with # are skipped)"]) {
        $0.environment += try environmentFile($1)
    },
    ExecOption("--user", "USER[:GROUP]", "Identity", ["run the program as USER (a name in the image's",
                                                      "/etc/passwd, or a UID) with its groups from the",
                                                      "image's /etc/group; GROUP (a name or GID) replaces",
                                                      "its group. A UID without an entry gets GID = UID"],
               values: { $0.user.map { [$0] } ?? [] }) {
        guard !$1.isEmpty && !$1.hasPrefix(":") && !$1.hasSuffix(":") else {
            throw PlashError.usage("--user \($1): expected USER, UID, USER:GROUP or UID:GID")
        }
        $0.user = $1
    },
    ExecOption("--cap-drop", "CAP", "Identity", ["drop the capability CAP (chown, net_raw, ...; ALL for",
                                                 "all), for root inside and any program it runs"],
               values: { capabilityValues($0.dropCapabilities) }) {
        $0.dropCapabilities |= try capabilityBits($1, option: "--cap-drop")
    },
    ExecOption("--cap-add", "CAP", "Identity", ["keep CAP though --cap-drop ALL or --isolate drop it"],
               values: { capabilityValues($0.addCapabilities) }) {
        $0.addCapabilities |= try capabilityBits($1, option: "--cap-add")
    },
    ExecOption("--read-only", nil, "Identity", ["the root file system is read-only (binds and tmpfs",
                                                "mounts keep their own mode)"], values: { flag($0.readOnlyRoot) }) { plan, _ in
        plan.readOnlyRoot = true
    },
    ExecOption("--hostname", "NAME", "Isolation", ["own UTS namespace with this hostname"],
               values: { $0.hostname.map { [$0] } ?? [] }) {
        guard isHostname($1) else {
            throw PlashError.usage("--hostname \($1): use 1 to 64 letters, digits, '-', '_' and '.', starting with a letter or digit")
        }
        $0.hostname = $1
    },
    ExecOption("--net", "none", "Isolation", ["own network namespace with only lo, up; --net host",
                                              "(the default) shares the host's"],
               values: { $0.isolateNetwork ? ["none"] : [] }) {
        guard $1 == "none" || $1 == "host" else {
            throw PlashError.usage("--net \($1): expected none, or host (the default)")
        }
        $0.isolateNetwork = $1 == "none"
    },
    ExecOption("--pid-ns", nil, "Isolation", ["own PID namespace: this process stays and passes",
                                              "signals, through a tiny init, to the program;",
                                              "everything the program started dies with it"], values: { flag($0.pidNamespace) }) { plan, _ in
        plan.pidNamespace = true
    },
    ExecOption("--unshare-ipc", nil, "Isolation", ["own IPC namespace (System V IPC, POSIX queues)"],
               values: { flag($0.unshareIPC) }) { plan, _ in
        plan.unshareIPC = true
    },
    ExecOption("--dev", nil, "Isolation", ["a minimal /dev of its own: null, zero, full, random,",
                                           "urandom, tty, its own pts and shm"], values: { flag($0.minimalDev) }) { plan, _ in
        plan.minimalDev = true
    },
    ExecOption("--isolate", nil, "Isolation", ["no route to the host but --bind: own PID and IPC",
                                               "namespaces, /proc and minimal /dev, private /tmp, no",
                                               "home, the host's /sys read-only, a package manager's",
                                               "capabilities only, --seccomp default unless given"],
               values: { flag($0.isolate) }) {
        plan, _ in
        plan.isolate = true
        plan.pidNamespace = true
        plan.unshareIPC = true
        plan.minimalDev = true
        plan.noNewPrivileges = true
    },
    ExecOption("--cgroup", "NAME", limitsGroup, ["run in plash/NAME, created or reused; what an earlier",
                                                 "instance left running there is killed first"],
               values: { $0.cgroup.map { [$0] } ?? [] }) {
        guard isCgroupName($1) else {
            throw PlashError.usage("--cgroup \($1): use letters, digits, '.', '_' and '-', starting with a letter or digit and not only digits (plash kill NAME must tell it from a PID)")
        }
        $0.cgroup = $1
    },
    ExecOption("--memory", "SIZE", limitsGroup, ["memory limit, swap included (64M, 1G; at least 1M)"],
               values: { $0.limits.memory.map { [String($0)] } ?? [] }) {
        $0.limits.memory = try parseMemoryLimit($1)
    },
    ExecOption("--pids", "N", limitsGroup, ["at most N processes and threads"],
               values: { $0.limits.pids.map { [String($0)] } ?? [] }) {
        guard let pids = Int($1), pids > 0 else { throw PlashError.usage("--pids \($1): expected a positive number") }
        $0.limits.pids = pids
    },
    ExecOption("--cpus", "FRACTION", limitsGroup, ["CPU time, in cores (0.5 = half a core)",
                                                   "(limits without --cgroup use plash/pid-PID)"],
               values: { $0.limits.cpus.map { [String($0)] } ?? [] }) {
        guard isDecimal($1), let cpus = Double($1), cpus >= 0.01, cpus <= 4096 else {
            throw PlashError.usage("--cpus \($1): expected a number of cores such as 0.5 or 2")
        }
        $0.limits.cpus = cpus
    },
    ExecOption("--seccomp", "PROFILE", limitsGroup, ["system call filter: default (a deny list modelled on",
                                                     "Docker's), or a Docker/OCI seccomp profile (JSON)"],
               values: { $0.seccomp.map { [$0] } ?? [] }) {
        $0.seccomp = $1
    },
    ExecOption("--no-new-privs", nil, limitsGroup, ["setuid programs gain nothing (set by --seccomp too)"],
               values: { flag($0.noNewPrivileges) }) {
        plan, _ in plan.noNewPrivileges = true
    },
    ExecOption("--die-with-parent", nil, "Other", ["the program gets SIGKILL when the process that started",
                                                   "plash-exec dies (a build step when its plash is killed)"],
               values: { flag($0.dieWithParent) }) {
        plan, _ in plan.dieWithParent = true
    },
    ExecOption("--error-fd", "FD", "Other", ["write plash-exec's own failure to the open descriptor",
                                             "FD, not to stderr (so a caller tells it from the",
                                             "program's own exit status); the program never gets FD"],
               values: { $0.errorDescriptor.map { [String($0)] } ?? [] }) {
        guard let fd = Int32($1), fd > 2 else { throw PlashError.usage("--error-fd \($1): not a descriptor above 2") }
        // Said now, before anything is set up: a failure written to a closed FD is lost.
        guard fcntl(fd, F_GETFD) != -1 else { throw PlashError.usage("--error-fd \(fd): not an open descriptor") }
        $0.errorDescriptor = fd
    },
]

/// The option named `name`, as typed (`--memory`, not `--memory=1G`).
public func execOption(_ name: String) -> ExecOption? {
    execOptions.first { $0.name == name }
}

/// argv (without argv[0]) -> what to do. Options come first; the first word that is not
/// an option is the IMAGE (unless --root or --lower named one), then `--` or the
/// command (no option: refuseAfterImage). `--opt VALUE` and `--opt=VALUE` are the same.
public func parse(_ arguments: [String]) throws -> Invocation {
    var plan = ExecPlan(image: .lowers([]))
    var rest = arguments[...]

    while let word = rest.popFirst() {
        if word == "--" { break }
        if case .stored = plan.image {
            try refuseAfterImage(word)
            rest.insert(word, at: rest.startIndex)
            break
        }
        guard word.hasPrefix("-") && word.count > 1 else {
            if plan.image == .lowers([]) {
                plan.image = .stored(word)
                continue
            }
            rest.insert(word, at: rest.startIndex)
            break
        }
        if word == "-h" || word == "--help" || word.hasPrefix("--help=") { return .help }
        if word == "--version" || word.hasPrefix("--version=") { return .version }
        try applyOption(word, &rest, to: &plan)
    }

    guard plan.image != .lowers([]) else { throw PlashError.usage("no image: give --root DIR, --lower DIR or an IMAGE") }
    if !rest.isEmpty { plan.command = Array(rest) }
    return .run(finished(plan))
}

/// After IMAGE comes the command; an option there (`plash-exec 2 --memory 1G sh`) would
/// run a program named --memory, so it is refused, as plash run refuses it.
func refuseAfterImage(_ word: String) throws {
    let name = word.split(separator: "=", maxSplits: 1).first.map(String.init) ?? word
    guard word.hasPrefix("--"), let option = execOption(name) else { return }
    let value = option.value.map { " " + $0 } ?? ""
    throw PlashError.usage("\(name): options go before the image: plash-exec \(name)\(value) IMAGE ...")
}

/// The plan of options alone (`plash run`'s, checked to be options of the table),
/// for `image` and `command`: as parse would make it of the same words, without
/// turning them back into argv.
public func execPlan(options: [String], image: ExecPlan.Image, command: [String]) throws -> ExecPlan {
    var plan = ExecPlan(image: .lowers([]))
    var rest = options[...]
    while let word = rest.popFirst() { try applyOption(word, &rest, to: &plan) }
    plan.image = image
    plan.command = command
    return finished(plan)
}

/// Applies the option `word` (with its value: inline after `=`, else the next word of
/// `rest`) to the plan.
func applyOption(_ word: String, _ rest: inout ArraySlice<String>, to plan: inout ExecPlan) throws {
    var name = word
    var inline: String? = nil
    if word.hasPrefix("--"), let equals = word.firstIndex(of: "=") {
        name = String(word[..<equals])
        inline = String(word[word.index(after: equals)...])
    }
    guard let option = execOption(name) else {
        throw PlashError.usage("\(name): unknown option (see plash-exec --help)")
    }
    var value = ""
    if option.takesValue {
        guard let given = inline ?? rest.popFirst() else { throw PlashError.usage("\(name): needs a value") }
        value = given
    } else if inline != nil {
        throw PlashError.usage("\(name): takes no value")
    }
    try option.apply(&plan, value)
}

/// What the options imply together, once all are read.
func finished(_ plan: ExecPlan) -> ExecPlan {
    var plan = plan
    if plan.isolate && plan.seccomp == nil { plan.seccomp = "default" }
    return plan
}

/// The plan as plash-exec's argv (without argv[0]): the options of the table in its
/// order, each given its values, the binds in theirs; then the image and `-- CMD`.
/// `parse` of it gives the plan again. A plan made by hand must hold only what options
/// can say: a bind of no option's kind, or an entrypoint of several words, is a bug.
public func execArguments(_ plan: ExecPlan) -> [String] {
    var words: [String] = []
    var bindsGiven = false
    for option in execOptions {
        if option.bindValue != nil {
            guard !bindsGiven else { continue }
            bindsGiven = true
            for bind in plan.binds {
                guard let (option, value) = execOptions.lazy.compactMap({ option in
                    option.bindValue?(bind).map { (option, $0) }
                }).first else { preconditionFailure("no plash-exec option makes the bind \(bind)") }
                words += [option.name, value]
            }
            continue
        }
        for value in option.values(plan) { words += option.takesValue ? [option.name, value] : [option.name] }
    }
    switch plan.image {
    case .stored(let name): words.append(name)
    case .resolved(let id, _, _): words.append(String(id))
    case .root, .lowers: break
    }
    if !plan.command.isEmpty { words += ["--"] + plan.command }
    return words
}

/// [""] when an option without a value is given, else [].
func flag(_ given: Bool) -> [String] { given ? [""] : [] }

func tmpfsBind(_ destination: String) -> Bind {
    var bind = Bind("tmpfs", destination)
    bind.newTmpfs = true
    return bind
}

/// --entrypoint's value: '' for none, else its one word.
func entrypointValue(_ words: [String]) -> [String] {
    precondition(words.count <= 1, "--entrypoint takes one word, not \(words)")
    return [words.first ?? ""]
}

/// --root, --lower and IMAGE exclude each other.
func setImage(_ plan: inout ExecPlan, _ image: ExecPlan.Image) throws {
    guard plan.image == .lowers([]) else { throw PlashError.usage("give only one of --root, --lower and IMAGE") }
    plan.image = image
}

/// Help rows for `options`, from the table: a heading where the group changes, the
/// IMAGE operand beside --lower. plash-exec's --help lists them all, `plash run
/// --help` those it passes on.
public func optionsHelp(_ options: [ExecOption]) -> String {
    var text = ""
    var group = ""
    for option in options {
        if option.group != group {
            group = option.group
            text += group + ":\n"
        }
        text += helpRow(option.name + (option.value.map { " " + $0 } ?? ""), option.help)
        if option.name == "--lower" { text += helpRow("IMAGE", ["an image id or name in the store ($PLASH_DATA)"]) }
    }
    return text
}

/// `  --name VALUE           help`, continuation lines aligned under the help.
func helpRow(_ left: String, _ lines: [String]) -> String {
    var text = "  " + left + String(repeating: " ", count: max(1, 23 - left.count)) + lines[0] + "\n"
    for line in lines.dropFirst() { text += String(repeating: " ", count: 25) + line + "\n" }
    return text
}

func parseBind(_ spec: String, option: String) throws -> Bind {
    var source = spec
    var destination = spec
    if let colon = spec.firstIndex(of: ":") {
        source = String(spec[..<colon])
        destination = String(spec[spec.index(after: colon)...])
    }
    guard !source.isEmpty else { throw PlashError.usage("\(option) \(spec): empty source") }
    guard destination.hasPrefix("/") else {
        throw PlashError.usage("\(option) \(spec): destination must be an absolute path")
    }
    return Bind(source, destination, readOnly: option == "--ro-bind")
}

/// A name `plash kill NAME` can give back: not an option (`-x`, `--`), not a PID or an
/// image id (`0`), not `.` or `..`.
func isCgroupName(_ name: String) -> Bool {
    guard let first = name.utf8.first, isASCIIAlphanumeric(first), name.utf8.count <= 200 else { return false }
    return !name.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        && name.utf8.allSatisfy { isASCIIAlphanumeric($0) || "._-".utf8.contains($0) }
}

/// A hostname as sethostname(2) takes it and tools print it: no newline, no `/`, no
/// space, not an option.
func isHostname(_ name: String) -> Bool {
    guard let first = name.utf8.first, isASCIIAlphanumeric(first), name.utf8.count <= 64 else { return false }
    return name.utf8.allSatisfy { isASCIIAlphanumeric($0) || "._-".utf8.contains($0) }
}

/// Digits with at most one `.` among them: what Double() would also read as hex
/// (`0x1`), in exponents (`1e1`) or as `inf` is refused.
func isDecimal(_ text: String) -> Bool {
    let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
    return parts.allSatisfy { $0.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") } }
        && parts.contains { !$0.isEmpty } && parts.count <= 2
}

func isASCIIAlphanumeric(_ byte: UInt8) -> Bool {
    (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
        || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
}

/// The smallest --memory: below it not even a shell starts, and the kernel kills the
/// program before it can say a word. A number without a unit is bytes, so `--memory 100`
/// is refused rather than taken as 100 bytes.
public let minimumMemory: UInt64 = 1 << 20

func parseMemoryLimit(_ text: String) throws -> UInt64 {
    guard let bytes = parseSize(text) else {
        throw PlashError.usage("--memory \(text): expected a size such as 64M or 1G")
    }
    guard bytes >= minimumMemory else {
        throw PlashError.usage("--memory \(text): below the minimum of 1M (a size without a unit is bytes)")
    }
    return bytes
}

/// "64M" -> 67108864: bytes, or K, M, G, T (powers of 1024), optionally followed by B.
/// With a unit the number may have a fraction, as docker's `--memory 1.5g` (rounded down
/// to a byte); bytes are whole.
public func parseSize(_ text: String) -> UInt64? {
    var digits = Substring(text.uppercased())
    if digits.hasSuffix("B") { digits = digits.dropLast() }
    var shift: UInt64 = 0
    if let unit = digits.last, let index = "KMGT".firstIndex(of: unit) {
        shift = UInt64("KMGT".distance(from: "KMGT".startIndex, to: index) + 1) * 10
        digits = digits.dropLast()
    }
    let parts = digits.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
    guard let number = UInt64(parts[0]), number <= (UInt64.max >> shift) else { return nil }
    guard parts.count == 2 else { return number << shift }
    // Up to 6 fraction digits, so the numerator shifted by T's 40 bits stays in 64.
    let fraction = parts[1]
    guard shift > 0, !fraction.isEmpty, fraction.count <= 6, let numerator = UInt64(fraction),
          fraction.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
    var scale: UInt64 = 1
    for _ in 0..<fraction.count { scale *= 10 }
    let part = (numerator << shift) / scale
    guard (number << shift) <= UInt64.max - part else { return nil }
    return (number << shift) + part
}

/// The capabilities by their names in capabilities(7), without CAP_; a bit each.
let capabilityNames = [
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap",
    "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw", "ipc_lock", "ipc_owner",
    "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
    "sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write", "audit_control", "setfcap",
    "mac_override", "mac_admin", "syslog", "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf",
    "checkpoint_restore",
]

/// Capability bits -> the names --cap-drop and --cap-add take: ALL for every bit.
func capabilityValues(_ bits: UInt64) -> [String] {
    if bits == ~0 { return ["ALL"] }
    return capabilityNames.indices.filter { bits & (1 << UInt64($0)) != 0 }.map { capabilityNames[$0] }
}

/// "NET_RAW", "cap_net_raw", "net_raw" -> its bit; "ALL" -> every bit.
func capabilityBits(_ name: String, option: String) throws -> UInt64 {
    var lower = name.lowercased()
    if lower == "all" { return ~0 }
    if lower.hasPrefix("cap_") { lower = String(lower.dropFirst(4)) }
    guard let index = capabilityNames.firstIndex(of: lower) else {
        throw PlashError.usage("\(option) \(name): unknown capability (see capabilities(7); ALL for all)")
    }
    return 1 << UInt64(index)
}

/// More than execve(2) takes for the whole environment (a quarter of the 8 MiB stack):
/// a file past it is no environment (/dev/zero) and would fill the memory.
let environmentFileLimit = 2 << 20

/// Docker's --env-file: NAME=VALUE or NAME per line, taken as it stands (no quotes, no
/// expansion); empty lines and comments skipped.
func environmentFile(_ path: String) throws -> [String] {
    let text = String(decoding: try readFile(path, what: "--env-file", limit: environmentFileLimit), as: UTF8.self)
    var entries: [String] = []
    // "\r\n" is one Character to Swift: a file from Windows splits only this way.
    let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
    for (number, entry) in lines.enumerated() {
        if entry.allSatisfy({ $0 == " " || $0 == "\t" }) || entry.first == "#" { continue }
        guard entry.first != "=" && !entry.contains("\0") else {
            throw PlashError.usage("--env-file \(path): line \(number + 1): expected NAME=VALUE or NAME")
        }
        entries.append(String(entry))
    }
    return entries
}
