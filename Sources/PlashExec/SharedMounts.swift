#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

/// What the container shares with the host, in mount order (parents before children):
/// the kernel's file systems, /tmp, /home and $HOME, the caller's working directory,
/// the name service files, then the caller's own --bind and --ro-bind.
public func sharedMounts(_ plan: ExecPlan, home: String?, callerDirectory: String?,
                         hostHas: (String) -> Bool) -> [Bind] {
    var mounts = ["/proc", "/dev", "/sys"].map { Bind($0, $0) }
    mounts[0].newProcfs = plan.pidNamespace
    var unshared: [String] = []
    if plan.shareTmp { mounts.append(Bind("/tmp", "/tmp")) } else { unshared.append("/tmp") }

    var homes = ["/home"]
    if let home, home.hasPrefix("/"), home != "/", !isPath(home, within: "/home") { homes.append(home) }
    if plan.shareHome {
        mounts += homes.filter(hostHas).map { Bind($0, $0) }
    } else {
        unshared += homes
    }

    if plan.workingDirectory == nil, let cwd = callerDirectory, cwd != "/",
       !mounts.contains(where: { isPath(cwd, within: $0.destination) }),
       !unshared.contains(where: { isPath(cwd, within: $0) }) {
        mounts.append(Bind(cwd, cwd, onlyWhereImageHasNone: true))
    }

    mounts += ["/etc/resolv.conf", "/etc/hosts"].filter(hostHas).map { Bind($0, $0) }
    return mounts + plan.binds
}

public func mountShared(_ mounts: [Bind], into root: RootMount) throws {
    for mount in mounts {
        if mount.onlyWhereImageHasNone && exists(mount.destination, in: root.fd) { continue }
        if mount.newProcfs {
            let target = try openOrCreate(mount.destination, in: root.fd, directory: true)
            defer { close(target) }
            try PlashSystem.mount("proc", on: procPath(target), type: "proc",
                                  flags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), what: "mount proc on")
            continue
        }
        let directory = try isDirectory(mount.source, what: mount.readOnly ? "ro-bind source" : "bind source")
        let target = try openOrCreate(mount.destination, in: root.fd, directory: directory)
        defer { close(target) }
        try bind(mount.source, onto: target, path: mount.destination)
        if mount.readOnly {
            // The bind covers `target`; only a fresh lookup reaches the new mount.
            let mounted = try openOrCreate(mount.destination, in: root.fd, directory: directory)
            defer { close(mounted) }
            try makeReadOnly(mounted, path: mount.destination)
        }
    }
}
