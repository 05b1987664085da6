import Foundation
import PlashTestSupport
import Testing

// import-url and import-lxc, --from-url and --image NAME, as a real ordinary user: the
// archive's owners land as in the archive, as import-tar's do.

/// A web tree with the busybox root plus /owners/{root,u100,nobody} (owned by 0, 100
/// and 65534, all in the test user's subordinate range) as rootfs.tar.xz, served as a
/// URL and as the image `owners:1` of an LXC image server.
func severalOwnersServer() throws -> WebServer {
    let root = makeDirectory("owners-web")
    let image = "/images/owners/1/\(imageArchitecture)/default/20260101_00:00/"
    try FileManager.default.createDirectory(atPath: root + image, withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: root + "/meta/1.0", withIntermediateDirectories: true)
    let script = """
        import tarfile, io, sys
        out = tarfile.open(sys.argv[2], 'w:xz')
        def rooted(info):
            info.uid = info.gid = 0; info.uname = info.gname = ''
            return info
        out.add(sys.argv[1], arcname='.', filter=rooted)
        def add(name, kind=tarfile.REGTYPE, owner=0):
            info = tarfile.TarInfo(name)
            info.type = kind; info.uid = info.gid = owner
            info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            out.addfile(info, io.BytesIO(b'') if kind == tarfile.REGTYPE else None)
        add('owners', tarfile.DIRTYPE)
        add('owners/root')
        add('owners/u100', owner=100)
        add('owners/nobody', owner=65534)
        out.close()
        """
    let made = try run("/usr/bin/env", ["python3", "-c", script, try busyboxRoot, root + image + "rootfs.tar.xz"],
                       environment: ["PATH": "/root/.pyenv/shims:/usr/local/bin:/usr/bin:/bin", "HOME": "/root"])
    guard made.status == 0 else { throw SetupError("python: \(made)") }
    let listed = try shell("""
        cd '\(root)\(image)' && sha256sum rootfs.tar.xz > SHA256SUMS && cp rootfs.tar.xz '\(root)/a.tar.xz' \
        && cp rootfs.tar.xz '\(root)/b.tar.xz' \
        && echo 'owners;1;\(imageArchitecture);default;20260101_00:00;\(image)' > '\(root)/meta/1.0/index-system'
        """)
    guard listed.status == 0 else { throw SetupError("web tree: \(listed)") }
    return try WebServer(root: root)
}

@Test func anOrdinaryUsersURLAndImageServerImportsKeepTheArchivesOwners() throws {
    let user = try userWithSubordinateIDs
    let server = try severalOwnersServer()
    defer { server.stop() }
    let base = "http://127.0.0.1:\(server.port)"
    let cwd = makeDirectory("userurl", ownedBy: user)
    let expected = "65534:65534 /owners/nobody\n0:0 /owners/root\n100:100 /owners/u100\n"
    // The imports' own commands, then the same sources resolved by builds in a second store.
    let sources: [(store: String, arguments: [String])] = [
        ("cli", ["import-url", base + "/a.tar.xz"]),
        ("cli", ["import-lxc", "owners"]),
        ("build", ["build", "--from-url", base + "/b.tar.xz"]),
        ("build", ["build", "--image", "owners"]),
    ]
    for (store, arguments) in sources {
        let data = cwd + "/" + store
        let environment = ["PLASH_DATA": data, "PLASH_LXC_SERVER": base, "PLASH_LXC_UNCHECKED": base]
        let imported = try user.run(userPlash, arguments, environment: environment, directory: cwd)
        #expect(imported.status == 0, "\(arguments): \(imported)")
        let id = imported.stdout.trimmingCharacters(in: .newlines)
        let seen = try user.run(userPlash, ["run", id, "--", "stat", "-c", "%u:%g %n", "/owners/nobody", "/owners/root", "/owners/u100"],
                                environment: environment, directory: cwd)
        #expect(seen.stdout == expected, "\(arguments): \(imported.stderr) \(seen)")
    }
    #expect(try rootOwnedFiles([cwd]) == "")
}
