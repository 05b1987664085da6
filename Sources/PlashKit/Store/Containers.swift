#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

/// A process running inside a plash container, found through /proc: its root is an
/// overlay whose source plash-exec named `plash:ID` (or `plash:DIR`).
public struct ContainerProcess: Equatable, Sendable {
    public var pid: pid_t
    public var image: String          // the image id, or the --root directory
    public var store: String?         // the store of the image id
    public var command: String
    public var mountNamespace: String
}

/// Every process of every plash container visible here, by PID.
public func containerProcesses() -> [ContainerProcess] {
    return (directoryEntries("/proc") ?? []).compactMap { pid_t($0) }.sorted().compactMap { pid in
        guard pid != getpid(), let label = containerImage(of: pid) else { return nil }
        let parts = label.split(separator: "@", maxSplits: 1).map(String.init)
        let (image, store) = parts.count == 2 && Int(parts[0]) != nil ? (parts[0], Optional(parts[1])) : (label, nil)
        return ContainerProcess(pid: pid, image: image, store: store, command: commandLine(of: pid),
                                mountNamespace: readLink("/proc/\(pid)/ns/mnt") ?? "")
    }
}

/// The label of a process's root mount, when plash-exec mounted it: the source of the
/// kernel's overlay, or of fuse-overlayfs's FUSE mount.
func containerImage(of pid: pid_t) -> String? {
    guard let root = MountEntry.table(of: String(pid))?.first(where: { $0.mountPoint == "/" && $0.source.hasPrefix("plash:") })
    else { return nil }
    return String(root.source.dropFirst(6))
}

func commandLine(of pid: pid_t) -> String {
    guard let data = try? readFile("/proc/\(pid)/cmdline", what: "read"), !data.isEmpty else { return "" }
    return String(decoding: data.dropLast(data.last == 0 ? 1 : 0).map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
}

/// The processes `plash kill TARGET` signals: a cgroup made with --cgroup TARGET; else
/// the container of PID TARGET; else every container of image TARGET (an id or a name).
/// Anything else is refused: a target like `..` must never name a cgroup outside plash/
/// (the root cgroup holds every process of the host).
public func processes(of target: String, store: Store) throws -> [pid_t] {
    if let hierarchy = try? CgroupHierarchy.current(),
       hierarchy.directories(nil).contains(where: { (directoryEntries($0, directoriesOnly: true) ?? []).contains(target) }) {
        return Cgroup(target, hierarchy: hierarchy).processes().filter { $0 != getpid() }
    }
    let running = containerProcesses()
    if let pid = pid_t(target), let process = running.first(where: { $0.pid == pid }) {
        return running.filter { $0.mountNamespace == process.mountNamespace }.map(\.pid)
    }
    if let image = store.lookup(target) {
        return containerProcesses(of: store).filter { $0.image == String(image.id) }.map(\.pid)
    }
    throw PlashError.failure("kill \(target): not a plash cgroup, the PID of a process in a container, or an image")
}

/// The processes running in containers of the images of `store`. Build steps count
/// too: they run in a container of the image they build on.
public func containerProcesses(of store: Store) -> [ContainerProcess] {
    containerProcesses().filter { $0.runs(in: store) }
}

extension ContainerProcess {
    /// Whether it runs an image of `store`, whatever spelling of the store's path its
    /// label holds (plash-exec writes the canonical one).
    public func runs(in store: Store) -> Bool { self.store.map { isSameDirectory($0, store.path) } ?? false }
}

/// The processes of `running` that use `image`: containers of the image or of an
/// image built on it, whose lower layers are its files.
func processes(using image: Store.Image, store: Store, among running: [ContainerProcess]) -> [ContainerProcess] {
    running.filter { process in
        guard let id = Int(process.image), let used = store.lookup(id: id) else { return false }
        return isPath(used.node, within: image.node)
    }
}

/// True when both paths name the same directory (a container's label holds the store's
/// path as its plash saw it).
func isSameDirectory(_ a: String, _ b: String) -> Bool {
    if a == b { return true }
    var first = stat(), second = stat()
    return stat(a, &first) == 0 && stat(b, &second) == 0 && first.st_dev == second.st_dev && first.st_ino == second.st_ino
}

/// Fails naming the first process that uses one of `images`: removing an image deletes
/// the files under its running containers.
public func refuseImagesInUse(_ images: [Store.Image], store: Store, command: String) throws {
    let running = containerProcesses(of: store)
    for image in images {
        if let process = processes(using: image, store: store, among: running).first {
            throw PlashError.failure("\(command): image \(image.id) is in use: PID \(process.pid) runs "
                                     + "\(process.command.debugDescription) in image \(process.image)")
                .advising("--force removes it anyway")
        }
    }
}

/// "TERM", "-TERM", "SIGTERM", "15", "-15" -> 15.
public func signalNumber(_ text: String) -> Int32? {
    var name = text.hasPrefix("-") ? String(text.dropFirst()) : text
    if let number = Int32(name), number > 0, number < 65 { return number }
    name = name.uppercased()
    if name.hasPrefix("SIG") { name = String(name.dropFirst(3)) }
    let names: [String: Int32] = [
        "HUP": SIGHUP, "INT": SIGINT, "QUIT": SIGQUIT, "KILL": SIGKILL, "USR1": SIGUSR1, "USR2": SIGUSR2,
        "TERM": SIGTERM, "ALRM": SIGALRM, "CONT": SIGCONT, "STOP": SIGSTOP, "TSTP": SIGTSTP, "WINCH": SIGWINCH,
        "PIPE": SIGPIPE, "ABRT": SIGABRT,
    ]
    return names[name]
}
