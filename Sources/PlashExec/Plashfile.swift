#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

/// Plashfiles of plash's first versions start `#!/usr/bin/env plash-exec`, so the kernel
/// runs `plash-exec ./Plashfile ARGS`. plash-builder runs Plashfiles; plash-exec hands
/// such a call straight to it (companionProgram), not through plash's front. An IMAGE never contains '/', so a first argument
/// that does and names a file is a Plashfile. Returns only when it is not one.
public func handOverPlashfile(_ arguments: [String]) throws {
    guard let file = arguments.first, file.contains("/"), !file.hasPrefix("-") else { return }
    var info = stat()
    // `plash-exec ./Plashfle`: a path that names nothing is no image either; say why, as
    // plash says it of a Plashfile, not that it is no image id or name.
    guard stat(file, &info) == 0 else { throw PlashError.usage("\(file): \(String(cString: strerror(errno)))") }
    guard info.st_mode & S_IFMT == S_IFREG else { return }
    let builder = companionProgram("plash-builder") ?? splitLast(ownPath).0 + "/plash-builder"
    let argv = ([builder] + arguments).map { strdup($0) } + [nil]
    execv(builder, argv)
    throw PlashError.system("exec", builder)
}
