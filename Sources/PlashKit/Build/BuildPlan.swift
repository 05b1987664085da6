import PlashExec

/// What `plash build MACRO…` asked for: an image to start from and layers on top.
public struct BuildPlan: Equatable, Sendable {
    /// Where the first layer comes from. `--from X` is an id, a name, or else busybox
    /// or an image server's NAME[:RELEASE].
    public enum Source: Equatable, Sendable {
        case any(String)
        case id(String)
        case name(String)
        /// A `--from-*` macro of an image source (ImageSource.swift): its name in
        /// `imageSources` and the macro's arguments, checked by its parser.
        case imported(source: String, arguments: [String])
        /// --from-github: the image that another build (a fetched Plashfile) makes.
        indirect case build(BuildPlan)
    }

    public var source: Source? = nil
    public var layers: [LayerSpec] = [LayerSpec()]
    /// Set by --entrypoint and --entrypoint-script: a Plashfile runs /.plash-entrypoint.
    public var hasEntrypoint = false
    /// What `plash run MACRO...` and Plashfiles share with the container: --mount's
    /// binds, and the caller's variables that `--hint use-env` names.
    public var runBinds: [Bind] = []
    public var runEnvironment: [String] = []
    /// --env-prefix: the caller's variables with these prefixes go into the container.
    public var runEnvironmentPrefixes: [String] = []
    /// --refresh: resolve what a --from-* macro or --from NAME names again instead of
    /// using the cached import.
    public var refresh = false

    public init() {}

    /// The layer that macros add to now.
    public var current: LayerSpec {
        get { layers[layers.count - 1] }
        set { layers[layers.count - 1] = newValue }
    }

    /// Layers with something to build: an empty `--layer` (a trailing one) adds none.
    public var nonEmptyLayers: [LayerSpec] { layers.filter { !$0.isEmpty } }
}

/// One layer: shell commands run in order, plus what else goes into its cache key.
public struct LayerSpec: Equatable, Sendable {
    public var steps: [String] = []
    public var hashPaths: [String] = []
    public var environment: [String] = []       // names passed from the caller
    public var invalidate = false
    /// What the config macros change in the image's config, in order (ConfigMacros.swift).
    public var config: [ConfigChange] = []

    public init(steps: [String] = []) { self.steps = steps }

    public var isEmpty: Bool { steps.isEmpty && hashPaths.isEmpty && !invalidate && config.isEmpty }

    /// The layer's build script, as stored for `plash ls` and exported as its history's
    /// `created_by`: its steps, then its config macros.
    public var script: String { (steps + config.map(\.macroLine)).joined(separator: "\n") }
}

/// 'It''s' -> 'It'\''s': one word for /bin/sh, whatever it holds.
public func shellQuote(_ word: String) -> String {
    if !word.isEmpty && word.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }) && word.isASCII {
        return word
    }
    return "'" + word.replacingOccurrences("'", with: "'\\''") + "'"
}

extension String {
    var isASCII: Bool { utf8.allSatisfy { $0 < 0x80 } }

    func replacingOccurrences(_ target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
