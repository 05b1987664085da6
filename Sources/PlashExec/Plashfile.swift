#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

/// Plashfiles of plash's first versions start `#!/usr/bin/env plash-exec`, so the kernel
/// runs `plash-exec ./Plashfile ARGS`. plash runs Plashfiles; plash-exec hands such a
/// call over to plash (companionProgram). An IMAGE never contains '/', so a first argument
/// that does and names a file is a Plashfile. Returns only when it is not one.
public func handOverPlashfile(_ arguments: [String]) throws {
    guard let file = arguments.first, file.contains("/"), !file.hasPrefix("-") else { return }
    var info = stat()
    // `plash-exec ./Plashfle`: a path that names nothing is no image either; say why, as
    // plash says it of a Plashfile, not that it is no image id or name.
    guard stat(file, &info) == 0 else { throw PlashError.usage("\(file): \(String(cString: strerror(errno)))") }
    guard info.st_mode & S_IFMT == S_IFREG else { return }
    let plash = companionProgram("plash") ?? splitLast(ownPath).0 + "/plash"
    let argv = ([plash] + arguments).map { strdup($0) } + [nil]
    execv(plash, argv)
    throw PlashError.system("exec", plash)
}
