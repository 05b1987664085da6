import PlashSystem

/// Everything plash-exec will do, decided from argv before any system call.
public struct ExecPlan: Equatable {
    public enum Image: Equatable {
        case root(String)          // --root DIR
        case lowers([String])      // --lower DIR..., top first
        case stored(String)        // an id or a name in the store
        /// A stored image its caller (plash run) has found already: its id, its node and
        /// the store's path as the caller spells it (absolute, where $PLASH_DATA may be
        /// relative). No option names it; argv gives it back as its id.
        case resolved(id: Int, node: String, store: String)
    }

    public var image: Image
    public var persist: String? = nil
    public var binds: [Bind] = []
    public var environment: [String] = []     // NAME=VALUE, or NAME to pass the caller's
    public var workingDirectory: String? = nil
    public var shareHome = true
    public var shareTmp = true
    public var readOnlyShares = false          // --ro-share: /home's entries, $HOME and the working directory
    public var hostname: String? = nil
    public var isolateNetwork = false
    public var pidNamespace = false            // --pid-ns: an init between the caller and the program
    public var isolate = false                 // --isolate: nothing of the host but what is named
    public var unshareIPC = false
    public var minimalDev = false              // --dev: a tmpfs /dev of a few devices, own devpts
    public var readOnlyRoot = false
    public var dropCapabilities: UInt64 = 0    // --cap-drop, as bits
    public var addCapabilities: UInt64 = 0     // --cap-add, as bits
    public var user: String? = nil             // --user USER|UID[:GROUP|GID], resolved inside
    public var cgroup: String? = nil           // plash/NAME; limits without it: plash/pid-PID
    public var limits = ResourceLimits()
    public var seccomp: String? = nil          // "default" or a profile's path
    public var noNewPrivileges = false
    public var dieWithParent = false
    public var errorDescriptor: Int32? = nil   // --error-fd: plash-exec's own failure goes there
    /// The words after the image: the command (empty: none given). With an image's
    /// config, it replaces the config's Cmd (ImageConfig.swift).
    public var command: [String] = []
    /// --entrypoint: replaces the image's Entrypoint ([] clears it) and drops its Cmd.
    public var entrypoint: [String]? = nil

    public init(image: Image) { self.image = image }
}

public struct Bind: Equatable, Sendable {
    public var source: String
    public var destination: String
    public var readOnly = false
    /// Shares a host directory only where the image has nothing at that path, so the
    /// caller's working directory never hides a directory of the image (/usr, /etc).
    public var onlyWhereImageHasNone = false
    /// Mounts a new procfs (of the container's PID namespace) instead of binding.
    public var newProcfs = false
    /// Mounts a new tmpfs (--tmpfs) instead of binding.
    public var newTmpfs = false
    /// Skipped when the source does not exist (--bind-try).
    public var optional = false
    /// A directory whose device nodes do not open and whose set-id files give nothing
    /// inside (--isolate's --binds); a device bound by its own name still works.
    public var noDevices = false

    public init(_ source: String, _ destination: String, readOnly: Bool = false,
                onlyWhereImageHasNone: Bool = false) {
        self.source = source
        self.destination = destination
        self.readOnly = readOnly
        self.onlyWhereImageHasNone = onlyWhereImageHasNone
    }

    /// --bind-try's: nothing when the source is missing.
    public static func ifPresent(_ source: String, _ destination: String) -> Bind {
        var bind = Bind(source, destination)
        bind.optional = true
        return bind
    }

    /// SRC, or SRC:DST when they differ: as --bind takes it.
    public var spec: String { source == destination ? source : source + ":" + destination }
}

public enum Invocation: Equatable {
    case run(ExecPlan)
    case help
    case version
}

public let usage: String = """
    Usage: plash-exec [OPTIONS] --root DIR [--] [CMD [ARG...]]
           plash-exec [OPTIONS] --lower DIR [--lower DIR]... [--] [CMD [ARG...]]
           plash-exec [OPTIONS] IMAGE [--] [CMD [ARG...]]
           plash-exec ./Plashfile [ARG...]   (handed to the plash beside it)

    Run CMD (default: the image's Entrypoint and Cmd, else /bin/sh) in a
    container, as this very process: same PID, same stdin/stdout/stderr, the
    program's own exit status.

    \(optionsHelp(execOptions) + helpRow("-h, --help", ["show this help"]) + helpRow("--version", ["show the version"]))
    Exit status: the program's own; 125 when plash-exec itself fails, 126 when CMD
    cannot be executed, 127 when CMD is not found.
    """
