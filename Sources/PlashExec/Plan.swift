import PlashSystem

/// Everything plash-exec will do, decided from argv before any system call.
public struct ExecPlan: Equatable {
    public enum Image: Equatable {
        case root(String)          // --root DIR
        case lowers([String])      // --lower DIR..., top first
        case stored(String)        // an id or a name in the store
    }

    public var image: Image
    public var persist: String? = nil
    public var binds: [Bind] = []
    public var environment: [String] = []     // NAME=VALUE, or NAME to pass the caller's
    public var workingDirectory: String? = nil
    public var shareHome = true
    public var shareTmp = true
    public var hostname: String? = nil
    public var isolateNetwork = false
    public var pidNamespace = false            // --pid-ns: an init between the caller and the program
    public var cgroup: String? = nil           // plash/NAME; limits without it: plash/pid-PID
    public var limits = ResourceLimits()
    public var seccomp: String? = nil          // "default" or a profile's path
    public var noNewPrivileges = false
    public var dieWithParent = false
    public var command: [String] = ["/bin/sh"]

    public init(image: Image) { self.image = image }
}

public struct Bind: Equatable {
    public var source: String
    public var destination: String
    public var readOnly = false
    /// Shares a host directory only where the image has nothing at that path, so the
    /// caller's working directory never hides a directory of the image (/usr, /etc).
    public var onlyWhereImageHasNone = false
    /// Mounts a new procfs (of the container's PID namespace) instead of binding.
    public var newProcfs = false

    public init(_ source: String, _ destination: String, readOnly: Bool = false,
                onlyWhereImageHasNone: Bool = false) {
        self.source = source
        self.destination = destination
        self.readOnly = readOnly
        self.onlyWhereImageHasNone = onlyWhereImageHasNone
    }
}

public enum Invocation: Equatable {
    case run(ExecPlan)
    case help
    case version
}

public let version = "0.1.0"

public let usage = """
    Usage: plash-exec [OPTIONS] --root DIR [--] [CMD [ARG...]]
           plash-exec [OPTIONS] --lower DIR [--lower DIR]... [--] [CMD [ARG...]]
           plash-exec [OPTIONS] IMAGE [--] [CMD [ARG...]]

    Run CMD (default /bin/sh) in a container, as this very process: same PID, same
    stdin/stdout/stderr, the program's own exit status.

    Image:
      --root DIR             the image is the directory DIR (never written to)
      --lower DIR            a layer of the image, top first; repeat for each layer
      IMAGE                  an image id or name in the store ($PLASH_DATA)
      --persist DIR          keep the container's writes in DIR (created if missing);
                             without it they vanish when the container exits
    Sharing:
      --bind SRC[:DST]       bind the host path SRC to DST (default: SRC) inside
      --ro-bind SRC[:DST]    the same, read-only
      --no-home              do not share /home and $HOME
      --no-tmp               do not share /tmp
      --cwd DIR              start in DIR inside (default: the caller's working
                             directory when it exists inside, else /)
    Environment:
      --env NAME=VALUE       set NAME inside; --env NAME passes the caller's value
                             (PLASH_EXPORT=A:B in the caller's environment passes A and B)
    Isolation:
      --hostname NAME        own UTS namespace with this hostname
      --net none             own network namespace with only lo, up
      --pid-ns               own PID namespace: this process stays and passes signals,
                             through a tiny init, to the program; everything the
                             program started dies with it
    Limits (a cgroup plash/NAME; cgroup v2 or v1):
      --cgroup NAME          run in plash/NAME, created or reused; what an earlier
                             instance left running there is killed first
      --memory SIZE          memory limit, swap included (64M, 1G)
      --pids N               at most N processes and threads
      --cpus FRACTION        CPU time, in cores (0.5 = half a core)
                             (limits without --cgroup use plash/pid-PID)
      --seccomp PROFILE      system call filter: default (a deny list modelled on
                             Docker's), or a Docker/OCI seccomp profile (JSON)
      --no-new-privs         setuid programs gain nothing (always set with --seccomp)
    Other:
      --die-with-parent      the program gets SIGKILL when the process that started
                             plash-exec dies (a build step when its plash is killed)
      -h, --help             show this help
      --version              show the version

    Exit status: the program's own; 125 when plash-exec itself fails, 126 when CMD
    cannot be executed, 127 when CMD is not found.
    """
