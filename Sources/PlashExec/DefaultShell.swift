#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

/// What `plash run IMAGE` runs without a command, as the original did: root's shell
/// from the image's /etc/passwd (/bin/bash in Debian, /bin/ash in Alpine) when the
/// image has it, else /bin/sh. Read from `layers`, what an overlay of the image stacks
/// (StoreLayout.mountedLayers), top first, without mounting.
public func defaultShell(layers: [String]) -> String {
    guard let passwd = imageFile("/etc/passwd", layers: layers),
          let text = try? readFile(passwd, what: "read", limit: 64 << 20),
          let root = PasswdEntry.parse(String(decoding: text, as: UTF8.self)).first(where: { $0.uid == 0 }) else { return "/bin/sh" }
    return root.shell.hasPrefix("/") && imageFile(root.shell, layers: layers, anyType: true) != nil ? root.shell : "/bin/sh"
}

/// The path of `path` in the topmost layer that has it: a regular file (or anything,
/// with `anyType`), nil when a layer above hides it with a whiteout or none has it.
func imageFile(_ path: String, layers: [String], anyType: Bool = false) -> String? {
    for layer in layers {
        var info = stat()
        guard lstat(layer + path, &info) == 0 else { continue }
        let type = info.st_mode & S_IFMT
        if type == S_IFCHR && info.st_rdev == 0 { return nil }   // an overlayfs whiteout
        return anyType || type == S_IFREG ? layer + path : nil
    }
    return nil
}
