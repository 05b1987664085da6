import PlashSystem

/// Every option of plash-exec and whether it takes a value: `plash run` passes these
/// on. (-h, --help and --version are not among them.)
public let execOptions: [(name: String, takesValue: Bool)] = [
    ("--root", true), ("--lower", true), ("--persist", true), ("--bind", true), ("--ro-bind", true),
    ("--env", true), ("--cwd", true), ("--no-home", false), ("--no-tmp", false), ("--hostname", true),
    ("--net", true), ("--cgroup", true), ("--memory", true), ("--pids", true), ("--cpus", true),
    ("--seccomp", true), ("--no-new-privs", false), ("--pid-ns", false), ("--die-with-parent", false),
]

/// argv (without argv[0]) -> what to do. Options come first; the first word that is not
/// an option is the IMAGE (unless --root or --lower named one), then `--` or the
/// command. `--opt VALUE` and `--opt=VALUE` are the same.
public func parse(_ arguments: [String]) throws -> Invocation {
    var plan = ExecPlan(image: .lowers([]))
    var root: String? = nil
    var lowers: [String] = []
    var imageName: String? = nil
    var rest = arguments[...]

    func value(_ option: String, _ inline: String?) throws -> String {
        if let inline { return inline }
        guard let next = rest.popFirst() else { throw PlashError.usage("\(option): needs a value") }
        return next
    }

    while let word = rest.popFirst() {
        if word == "--" { break }
        guard word.hasPrefix("-") && word.count > 1 else {
            if root == nil && lowers.isEmpty && imageName == nil {
                imageName = word
                continue
            }
            rest.insert(word, at: rest.startIndex)
            break
        }
        var option = word
        var inline: String? = nil
        if word.hasPrefix("--"), let equals = word.firstIndex(of: "=") {
            option = String(word[..<equals])
            inline = String(word[word.index(after: equals)...])
        }
        switch option {
        case "-h", "--help": return .help
        case "--version": return .version
        case "--root": root = try value(option, inline)
        case "--lower": lowers.append(try value(option, inline))
        case "--persist": plan.persist = try value(option, inline)
        case "--bind", "--ro-bind":
            plan.binds.append(try parseBind(try value(option, inline), option: option))
        case "--env":
            let assignment = try value(option, inline)
            guard !assignment.isEmpty && !assignment.hasPrefix("=") else {
                throw PlashError.usage("--env \(assignment): expected NAME=VALUE or NAME")
            }
            plan.environment.append(assignment)
        case "--cwd":
            let dir = try value(option, inline)
            guard dir.hasPrefix("/") else { throw PlashError.usage("--cwd \(dir): must be an absolute path") }
            plan.workingDirectory = dir
        case "--no-home": plan.shareHome = false
        case "--no-tmp": plan.shareTmp = false
        case "--hostname":
            let name = try value(option, inline)
            guard !name.isEmpty && name.utf8.count <= 64 else {
                throw PlashError.usage("--hostname \(name): must be 1 to 64 characters")
            }
            plan.hostname = name
        case "--net":
            let mode = try value(option, inline)
            guard mode == "none" else { throw PlashError.usage("--net \(mode): only 'none' is supported") }
            plan.isolateNetwork = true
        case "--cgroup":
            let name = try value(option, inline)
            guard isCgroupName(name) else {
                throw PlashError.usage("--cgroup \(name): use letters, digits, '.', '_' and '-'")
            }
            plan.cgroup = name
        case "--memory":
            let size = try value(option, inline)
            guard let bytes = parseSize(size), bytes > 0 else {
                throw PlashError.usage("--memory \(size): expected a size such as 512K, 64M or 1G")
            }
            plan.limits.memory = bytes
        case "--pids":
            let count = try value(option, inline)
            guard let pids = Int(count), pids > 0 else { throw PlashError.usage("--pids \(count): expected a positive number") }
            plan.limits.pids = pids
        case "--cpus":
            let fraction = try value(option, inline)
            guard let cpus = Double(fraction), cpus >= 0.01, cpus <= 4096 else {
                throw PlashError.usage("--cpus \(fraction): expected a number of cores such as 0.5 or 2")
            }
            plan.limits.cpus = cpus
        case "--seccomp":
            plan.seccomp = try value(option, inline)
        case "--no-new-privs": plan.noNewPrivileges = true
        case "--pid-ns": plan.pidNamespace = true
        case "--die-with-parent": plan.dieWithParent = true
        default:
            throw PlashError.usage("\(option): unknown option (see plash-exec --help)")
        }
    }

    let given = [root != nil, !lowers.isEmpty, imageName != nil].filter { $0 }.count
    guard given == 1 else {
        throw PlashError.usage(given == 0 ? "no image: give --root DIR, --lower DIR or an IMAGE"
                                    : "give only one of --root, --lower and IMAGE")
    }
    if let root { plan.image = .root(root) }
    if !lowers.isEmpty { plan.image = .lowers(lowers) }
    if let imageName { plan.image = .stored(imageName) }
    if !rest.isEmpty { plan.command = Array(rest) }
    return .run(plan)
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

func isCgroupName(_ name: String) -> Bool {
    !name.isEmpty && name != "." && name != ".." && name.utf8.count <= 200
        && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
}

/// "64M" -> 67108864: bytes, or K, M, G, T (powers of 1024), optionally followed by B.
public func parseSize(_ text: String) -> UInt64? {
    var digits = Substring(text.uppercased())
    if digits.hasSuffix("B") { digits = digits.dropLast() }
    var shift: UInt64 = 0
    if let unit = digits.last, let index = "KMGT".firstIndex(of: unit) {
        shift = UInt64("KMGT".distance(from: "KMGT".startIndex, to: index) + 1) * 10
        digits = digits.dropLast()
    }
    guard let number = UInt64(digits), number <= (UInt64.max >> shift) else { return nil }
    return number << shift
}
