#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

// systemd and s6 talk to the program they supervise through variables, descriptors
// and a socket: sd_notify(3) sends READY=1 to $NOTIFY_SOCKET, sd_listen_fds(3) takes
// the sockets a .socket unit opened from fd 3 up when $LISTEN_PID is its own PID, and
// s6's notification-fd is a descriptor too. Descriptors pass through plash-exec as
// they are (it opens its own close-on-exec); the variables and the socket need this.

/// The variables a service manager gives the program it starts, passed on into the
/// container. A build step is no service: the builder drops them.
public let serviceManagerVariables = ["NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID",
                                      "WATCHDOG_USEC", "WATCHDOG_PID"]

/// The caller's variable `name`, as the program must see it. LISTEN_PID and
/// WATCHDOG_PID name the process the manager started, this one: with --pid-ns the
/// program is another process (PID 2 of its namespace), so they name it instead, as
/// sd_listen_fds(3) accepts the sockets only when the PID is its own. A PID that names
/// another process stays as it is (those sockets were not meant for this program).
public func serviceManagerValue(_ name: String, caller: (String) -> String?, started: pid_t, program: pid_t) -> String? {
    guard let value = caller(name) else { return nil }
    if name == "LISTEN_PID" || name == "WATCHDOG_PID", value == "\(started)" { return "\(program)" }
    return value
}

/// The bind that makes $NOTIFY_SOCKET reachable inside the container: a socket file
/// is bound to its own path (the image rarely has /run/systemd, never the socket).
/// An abstract socket (`@NAME`) lives in the network namespace and needs nothing, but
/// no bind can carry it into a namespace of the container's own (--net none,
/// --isolate): refused, as a service that can never report ready would hang its
/// manager's start until the timeout. Other addresses (vsock:) are left to the program.
public func notifySocketBinds(_ plan: ExecPlan, socket: String?) throws -> [Bind] {
    guard let socket, !socket.isEmpty else { return [] }
    if socket.hasPrefix("@") {
        if plan.isolateNetwork {
            throw PlashError.failure("NOTIFY_SOCKET \(socket): an abstract socket cannot be reached from the container's own network namespace")
                .advising("give the service manager a socket file, or share the host's network")
        }
        return []
    }
    guard socket.hasPrefix("/") else { return [] }
    var info = stat()
    try check(stat(socket, &info), "NOTIFY_SOCKET", socket)
    guard (info.st_mode & S_IFMT) == S_IFSOCK else {
        throw PlashError.failure("NOTIFY_SOCKET \(socket): not a socket")
    }
    return [Bind(socket, socket)]
}
