#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

/// An flock(2) held until released or until the process dies: the kernel drops it on
/// exit, so a build killed with SIGKILL never leaves a lock behind. Opened O_CLOEXEC so
/// the containers a build starts never inherit it.
public final class FileLock {
    private var fd: Int32
    private let path: String?

    private init(fd: Int32, path: String? = nil) {
        self.fd = fd
        self.path = path
    }

    /// Locks `path`, creating it when missing. Lock files that `plash clean` may remove
    /// are re-checked after locking: when the path no longer names the locked file, the
    /// lock is taken again on the new one.
    public static func acquire(_ path: String, shared: Bool = false) throws -> FileLock {
        while true {
            let fd = try check(open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644), "open lock", path)
            if flock(fd, shared ? LOCK_SH : LOCK_EX) == -1 {
                let code = errno
                close(fd)
                if code == EINTR { continue }
                throw PlashError.system("lock", path, errno: code)
            }
            var held = stat(), named = stat()
            if fstat(fd, &held) == 0, stat(path, &named) == 0,
               held.st_dev == named.st_dev, held.st_ino == named.st_ino {
                return FileLock(fd: fd, path: path)
            }
            close(fd)
        }
    }

    /// Removes the lock file, then releases: whoever waits on the old file finds that
    /// the path names no file or another one, and locks again.
    public func releaseAndRemove() {
        if fd >= 0, let path { unlink(path) }
        release()
    }

    /// Locks an existing directory without waiting; nil when someone else holds it.
    public static func tryDirectory(_ path: String) -> FileLock? {
        tryLocking(path, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    }

    /// Locks a file that exists without waiting; nil when someone else holds it.
    public static func tryFile(_ path: String) -> FileLock? {
        tryLocking(path, flags: O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
    }

    private static func tryLocking(_ path: String, flags: Int32) -> FileLock? {
        let fd = open(path, flags)
        if fd == -1 { return nil }
        if flock(fd, LOCK_EX | LOCK_NB) == -1 {
            close(fd)
            return nil
        }
        return FileLock(fd: fd)
    }

    public func release() {
        if fd >= 0 { close(fd) }
        fd = -1
    }

    deinit { release() }
}

extension FileLock {
    func withDescriptor<T>(_ body: (Int32) -> T) -> T { body(fd) }
}
