#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

// Image sources, as containers/image has transports: each kind of source is one file
// that parses its references and imports what one names, and one line in `imageSources`.
// The `--from-*` macros, the `import-*` commands (and `pull`), `plash eval`'s hints and
// the completions' word lists all come from that table; the store's `makeOnce` gives
// each import its cache, lock and staging (docs/architecture.md shows the smallest).

/// One reference of a source, parsed and checked: what it names, and how to import it.
public protocol ImageSource {
    /// The cache key of the image this reference named when it was imported before, if
    /// that is known without reading or downloading anything: a build then starts from
    /// it with no import at all (for an ordinary user: no child in their user namespace).
    var cacheKey: String? { get }

    /// Imports what the reference names (or finds it imported before, unless
    /// `context.refresh`) and returns its image.
    func importImage(_ context: ImportContext) throws -> Store.Image
}

/// What an import is given.
public struct ImportContext {
    public var store: Store
    /// Resolve the reference again rather than use its earlier import.
    public var refresh: Bool
    /// The import runs as root of an ordinary user's user namespace: layers' owners land
    /// as their subordinate ids.
    public var inUserNamespace: Bool
    /// For `.rootAfterStart`: called once the source's own program started as the user.
    public var enterUserNamespace: () throws -> Void
    public var log: (String) -> Void
    /// The command that imports (`pull`), which errors name; nil in a build.
    public var command: String?

    public init(store: Store, refresh: Bool, inUserNamespace: Bool, enterUserNamespace: @escaping () throws -> Void = {},
                command: String? = nil, log: @escaping (String) -> Void) {
        self.store = store
        self.refresh = refresh
        self.inUserNamespace = inUserNamespace
        self.enterUserNamespace = enterUserNamespace
        self.command = command
        self.log = log
    }
}

/// Where a source's import runs for an ordinary user.
public enum ImportPrivilege: Sendable {
    /// As the user: the files are the user's own (busybox).
    case user
    /// As root of the user's own user namespace, where the archive's owners are their
    /// subordinate ids and chown works.
    case rootOfUserNamespace
    /// A program (mmdebstrap) starts as the user first; the namespace is entered after,
    /// for the extraction.
    case rootAfterStart
}

/// Who parses a reference: a macro or a command, for its usage errors.
public struct SourceCaller: Sendable {
    /// `--from-docker`, `import-docker`, `pull`.
    public var name: String
    /// The usage line a usage error ends with.
    public var usage: String
    public var isMacro: Bool { name.hasPrefix("-") }

    public init(name: String, usage: String) {
        self.name = name
        self.usage = usage
    }
}

/// An argument of a source's macro and commands: what completion offers there.
public struct SourceOperand: Sendable {
    public enum Kind: Sendable { case text, file, words([String]) }
    public let kind: Kind
    public let optional: Bool

    public static let text = SourceOperand(kind: .text, optional: false)
    public static let file = SourceOperand(kind: .file, optional: false)
    public static func optional(_ kind: Kind) -> SourceOperand { SourceOperand(kind: kind, optional: true) }
    public static func words(_ words: [String]) -> SourceOperand { SourceOperand(kind: .words(words), optional: false) }
}

/// One kind of image source: plain data (names, synopsis, help) that the macro and
/// command tables, help and completions list, and the parser of its references.
public struct ImageSourceKind: Sendable {
    /// A command that imports from the source and prints the image's id.
    public struct Command: Sendable {
        public enum Refresh: Sendable { case never, optional, always }
        public let name: String
        public let help: String
        /// `--refresh` taken (its line of help), or implied (`pull`).
        public let refresh: Refresh
        public let refreshHelp: String

        public init(_ name: String, help: String, refresh: Refresh = .never, refreshHelp: String = "") {
            self.name = name
            self.help = help
            self.refresh = refresh
            self.refreshHelp = refreshHelp
        }
    }

    /// `docker`, `oci`, ...: what BuildPlan.Source.imported names.
    public let name: String
    /// The arguments, as help shows them: `REF`, `SUITE [MIRROR]`.
    public let synopsis: String
    public let operands: [SourceOperand]
    /// `--from-docker` and its help; nil: no macro (--from names the source).
    public let macro: String?
    public let macroHelp: String
    public let commands: [Command]
    public let privilege: ImportPrivilege
    /// `plash eval`'s hint of where the image comes from: `(registry alpine)`.
    public let hint: @Sendable ([String]) -> String
    /// The reference that the arguments name; a usage error (`caller`'s) when they name none.
    public let parse: @Sendable (_ arguments: [String], _ caller: SourceCaller) throws -> any ImageSource

    public init(name: String, synopsis: String, operands: [SourceOperand] = [.text], macro: String?, macroHelp: String = "",
                commands: [Command], privilege: ImportPrivilege = .rootOfUserNamespace,
                hint: @escaping @Sendable ([String]) -> String,
                parse: @escaping @Sendable ([String], SourceCaller) throws -> any ImageSource) {
        self.name = name
        self.synopsis = synopsis
        self.operands = operands
        self.macro = macro
        self.macroHelp = macroHelp
        self.commands = commands
        self.privilege = privilege
        self.hint = hint
        self.parse = parse
    }

    /// How many arguments it takes.
    public var arguments: ClosedRange<Int> { operands.filter { !$0.optional }.count...operands.count }

    /// A command's synopsis: its arguments, after `[--refresh]` where it takes one.
    public func synopsis(of command: Command) -> String {
        (command.refresh == .optional ? "[--refresh] " : "") + synopsis
    }
}

/// Every image source, in the order help lists their commands and macros. A new source
/// is a file that defines its kind, and a line here.
public let imageSources: [ImageSourceKind] = [
    busyboxSource,
    lxcSource,
    urlSource,
    debootstrapSource,
    tarSource,
    ociSource,
    dockerSource,
    dockerArchiveSource,
]

public func imageSource(named name: String) -> ImageSourceKind? {
    imageSources.first { $0.name == name }
}
