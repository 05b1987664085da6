import PlashSystem

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
        guard let next = rest.popFirst() else { throw UsageError("\(option): needs a value") }
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
                throw UsageError("--env \(assignment): expected NAME=VALUE or NAME")
            }
            plan.environment.append(assignment)
        case "--cwd":
            let dir = try value(option, inline)
            guard dir.hasPrefix("/") else { throw UsageError("--cwd \(dir): must be an absolute path") }
            plan.workingDirectory = dir
        case "--no-home": plan.shareHome = false
        case "--no-tmp": plan.shareTmp = false
        case "--hostname":
            let name = try value(option, inline)
            guard !name.isEmpty && name.utf8.count <= 64 else {
                throw UsageError("--hostname \(name): must be 1 to 64 characters")
            }
            plan.hostname = name
        case "--net":
            let mode = try value(option, inline)
            guard mode == "none" else { throw UsageError("--net \(mode): only 'none' is supported") }
            plan.isolateNetwork = true
        default:
            throw UsageError("\(option): unknown option (see plash-exec --help)")
        }
    }

    let given = [root != nil, !lowers.isEmpty, imageName != nil].filter { $0 }.count
    guard given == 1 else {
        throw UsageError(given == 0 ? "no image: give --root DIR, --lower DIR or an IMAGE"
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
    guard !source.isEmpty else { throw UsageError("\(option) \(spec): empty source") }
    guard destination.hasPrefix("/") else {
        throw UsageError("\(option) \(spec): destination must be an absolute path")
    }
    return Bind(source, destination, readOnly: option == "--ro-bind")
}
