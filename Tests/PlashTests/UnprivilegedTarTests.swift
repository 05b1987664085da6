import Foundation
import PlashTestSupport
import Testing

// import-tar and export-tar as real ordinary users (setpriv), in their own stores.

/// A root-owned archive, as root's `plash export-tar` or a distribution writes them,
/// copied where `user` may read it.
func rootOwnedArchive(for user: TestUser, in dir: String) throws -> String {
    let archive = dir + "/root.tar"
    let script = """
        import tarfile, io
        out = tarfile.open('\(archive)', 'w')
        def add(name, kind=tarfile.REGTYPE, data=b'', mode=0o644, uid=0, gid=0, major=0, minor=0):
            info = tarfile.TarInfo(name)
            info.type = kind; info.mode = mode; info.uid = uid; info.gid = gid
            info.devmajor = major; info.devminor = minor; info.size = len(data)
            out.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
        add('d', tarfile.DIRTYPE, mode=0o755)
        add('d/mine', data=b'1000', uid=1000, gid=100)
        add('d/root', data=b'root', mode=0o600)
        add('d/null', tarfile.CHRTYPE, mode=0o666, major=1, minor=3)
        add('d/fifo', tarfile.FIFOTYPE)
        out.close()
        """
    let made = try run("/usr/bin/env", ["python3", "-c", script],
                       environment: ["PATH": "/root/.pyenv/shims:/usr/local/bin:/usr/bin:/bin", "HOME": "/root"])
    guard made.status == 0 else { throw StoreTestError("python: \(made)") }
    chown(archive, user.uid, user.uid)
    return archive
}

func ownerOnHost(_ path: String) throws -> String {
    try shell("stat -c '%u:%g' '\(path)'").stdout.trimmingCharacters(in: .newlines)
}

@Test func anOrdinaryUserImportsARootOwnedArchiveWithItsOwnersAndExportsItBack() throws {
    let user = try userWithSubordinateIDs
    let cwd = makeDirectory("usertar", ownedBy: user)
    let data = cwd + "/store"
    let archive = try rootOwnedArchive(for: user, in: cwd)
    let imported = try plashAs(user, ["import-tar", archive], data: data, directory: cwd)
    #expect(imported.status == 0, "\(imported)")
    #expect(imported.stdout == "1\n")
    #expect(imported.stderr.contains("skipped 1 device nodes"), "\(imported.stderr)")
    // Owners land as in the archive: 0 is the user, 1000 its subordinate id 999 above the range's start.
    let layer = data + "/layer/0/1/_data"
    let start = user.uid * 100_000
    #expect(try ownerOnHost(layer + "/d/mine") == "\(start + 999):\(start + 99)", "\(imported.stderr)")
    #expect(try ownerOnHost(layer + "/d/root") == "\(user.uid):\(user.uid)")
    #expect(FileManager.default.fileExists(atPath: layer + "/d/fifo"))
    #expect(!FileManager.default.fileExists(atPath: layer + "/d/null"))

    // Export as the user: the owners as the namespace sees them, i.e. as imported.
    let exported = try plashAs(user, ["export-tar", "1", cwd + "/out.tar"], data: data, directory: cwd)
    #expect(exported.status == 0, "\(exported)")
    #expect(exported.stderr == "", "\(exported)")
    let listing = try shell("tar -tvf '\(cwd)/out.tar' | awk '{ print $1, $2, $3, $6 }'").stdout
    #expect(listing.contains("-rw-r--r-- 1000/100 4 ./d/mine\n"), "\(listing)")
    #expect(listing.contains("-rw------- 0/0 4 ./d/root\n"), "\(listing)")
    #expect(try rootOwnedFiles([data, cwd]) == "")
}

@Test func anOrdinaryUserExportsAnImageOfSeveralLayers() throws {
    let user = try userWithSubordinateIDs
    let cwd = makeDirectory("userexport", ownedBy: user)
    let data = cwd + "/store"
    // A removed file and a directory made anew (a whiteout and an opaque directory),
    // which only an overlay mounted with userxattr shows as the container saw them.
    let built = try plashAs(user, ["build", "--from", "busybox", "--run", "rm /bin/ls; rm -r /usr/sbin; mkdir /usr/sbin; echo b > /b"],
                            data: data, directory: cwd)
    #expect(built.stdout == "2\n", "\(built)")
    let exported = try plashAs(user, ["export-tar", "2", cwd + "/out.tar"], data: data, directory: cwd)
    #expect(exported.status == 0, "\(exported)")
    let names = try shell("tar -tf '\(cwd)/out.tar'").stdout.split(separator: "\n")
    #expect(names.contains("./b") && names.contains("./bin/busybox"), "\(names)")
    #expect(!names.contains("./bin/ls"), "\(names)")
    #expect(names.filter { $0.hasPrefix("./usr/sbin/") } == ["./usr/sbin/"], "\(names)")
    #expect(try rootOwnedFiles([data, cwd]) == "")
}

@Test func withoutSubordinateIDsAnImportSaysWhoOwnsTheFiles() throws {
    let user = try userWithoutSubordinateIDs
    let cwd = makeDirectory("usertar-nosub", ownedBy: user)
    let data = cwd + "/store"
    let archive = try rootOwnedArchive(for: user, in: cwd)
    let imported = try plashAs(user, ["import-tar", archive], data: data, directory: cwd)
    #expect(imported.status == 0, "\(imported)")
    #expect(imported.stderr.contains("1 entries are owned by you"), "\(imported.stderr)")
    #expect(try ownerOnHost(data + "/layer/0/1/_data/d/mine") == "\(user.uid):\(user.uid)")
    #expect(try plashAs(user, ["export-tar", "1", cwd + "/out.tar"], data: data, directory: cwd).status == 0)
}

@Test func anOrdinaryUserExportsAnOCILayoutWithTheUpperLayersDeletions() throws {
    let user = try userWithSubordinateIDs
    let cwd = makeDirectory("useroci", ownedBy: user)
    let data = cwd + "/store"
    // In a user namespace overlayfs marks the opaque directory with user.overlay.opaque.
    let built = try plashAs(user, ["build", "--from", "busybox", "--run", "rm /bin/ls; rm -r /usr/sbin; mkdir /usr/sbin; echo b > /b"],
                            data: data, directory: cwd)
    #expect(built.stdout == "2\n", "\(built)")
    let exported = try plashAs(user, ["export-oci", "2", cwd + "/layout"], data: data, directory: cwd)
    #expect(exported.status == 0 && exported.stderr == "", "\(exported)")
    let unpacked = try shell("umoci unpack --image '\(cwd)/layout':latest '\(cwd)/bundle'")
    #expect(unpacked.status == 0, "\(unpacked)")
    let rootfs = cwd + "/bundle/rootfs"
    #expect(FileManager.default.fileExists(atPath: rootfs + "/b") && FileManager.default.fileExists(atPath: rootfs + "/bin/busybox"))
    #expect(!FileManager.default.fileExists(atPath: rootfs + "/bin/ls"))
    #expect((try? FileManager.default.contentsOfDirectory(atPath: rootfs + "/usr/sbin")) == [])
    #expect(try rootOwnedFiles([data, cwd + "/layout"]) == "")
}

@Test func anOrdinaryUserImportsRootsOCILayoutWithItsOwnersAndWhiteouts() throws {
    let user = try userWithSubordinateIDs
    let cwd = makeDirectory("userociimport", ownedBy: user)
    let root = TestStore()
    let id = try imageWithDeletions(root)
    #expect(try root.plash(["export-oci", id, cwd + "/layout.tar"]).status == 0)
    chown(cwd + "/layout.tar", user.uid, user.uid)
    let data = cwd + "/store"
    let imported = try plashAs(user, ["import-oci", cwd + "/layout.tar"], data: data, directory: cwd)
    #expect(imported.status == 0 && imported.stdout == "3\n", "\(imported)")
    let seen = try plashAs(user, ["run", "3", "sh", "-c", "ls /d; ls /gone; stat -c %u /bin/busybox"], data: data, directory: cwd)
    #expect(seen.stdout == "n\n0\n" && seen.stderr.contains("/gone: No such file or directory"), "\(seen)")
    #expect(try rootOwnedFiles([data]) == "")
}

/// The user's store keeps the layout's own blobs (copied from the user's directory,
/// hard-linked from an unpacked tar), owned by the user: an export gives them back.
@Test func anOrdinaryUserKeepsAnImportedLayoutsBlobsAndExportsThemUnchanged() throws {
    let user = try userWithSubordinateIDs
    let cwd = makeDirectory("userkept", ownedBy: user)
    let source = try umociLayout(cwd)
    #expect(try shell("tar -cf '\(cwd)/src.tar' -C '\(source)' . && chown -R \(user.uid):\(user.uid) '\(cwd)'").status == 0)
    let data = cwd + "/store"
    for (from, tag) in [(source + ":t", "dir"), (cwd + "/src.tar:t", "tar")] {
        let imported = try plashAs(user, ["import-oci", from], data: data, directory: cwd)
        #expect(imported.status == 0, "\(imported)")
        let id = imported.stdout.trimmingCharacters(in: .newlines)
        let exported = try plashAs(user, ["export-oci", id, cwd + "/out", "--tag", tag], data: data, directory: cwd)
        #expect(exported.status == 0 && exported.stderr == "", "\(exported)")
        #expect(try layoutLayers(cwd + "/out", tag) == layoutLayers(source, "t"))
        #expect(try plashAs(user, ["rm", id], data: data, directory: cwd).status == 0)
    }
    #expect(try rootOwnedFiles([data, cwd + "/out"]) == "")
}

/// --from-oci inside build and run, as an ordinary user: the import runs as root of the
/// user's namespace (as import-oci does), the build's steps and the run outside it.
@Test func anOrdinaryUserBuildsAndRunsFromRootsOCILayout() throws {
    let user = try userWithSubordinateIDs
    let cwd = makeDirectory("userfromoci", ownedBy: user)
    let root = TestStore()
    let id = try imageWithDeletions(root)
    #expect(try root.plash(["export-oci", id, cwd + "/layout.tar"]).status == 0)
    chown(cwd + "/layout.tar", user.uid, user.uid)
    let data = cwd + "/store"
    let built = try plashAs(user, ["build", "--from-oci", cwd + "/layout.tar", "--run", "stat -c %u /bin/busybox > /owner"],
                            data: data, directory: cwd)
    #expect(built.status == 0 && built.stdout == "4\n", "\(built)")
    let seen = try plashAs(user, ["run", "--from-oci", cwd + "/layout.tar", "--", "sh", "-c", "ls /d; ls /gone; stat -c %u /bin/busybox"],
                           data: data, directory: cwd)
    #expect(seen.stdout == "n\n0\n" && seen.stderr.contains("/gone: No such file or directory"), "\(seen)")
    #expect(try plashAs(user, ["run", "4", "cat", "/owner"], data: data, directory: cwd).stdout == "0\n")
    #expect(try ownerOnHost(data + "/layer/0/1/_data/bin/busybox") == "\(user.uid):\(user.uid)")
    #expect(try rootOwnedFiles([data]) == "")
}

/// A second build from an unchanged layout or archive, as an ordinary user, starts no
/// child for the import: it works under a limit of one process (RLIMIT_NPROC).
@Test func anOrdinaryUsersSecondBuildFromAnUnchangedLayoutStartsNoChild() throws {
    let user = try userWithSubordinateIDs
    let cwd = makeDirectory("usercachedlayout", ownedBy: user)
    let source = try umociLayout(cwd)
    let root = TestStore()
    #expect(try root.plash(["import-oci", source + ":t"]).status == 0)
    #expect(try root.plash(["export-docker-archive", "2", cwd + "/docker.tar"]).status == 0)
    #expect(try shell("tar -cf '\(cwd)/src.tar' -C '\(source)' . && chown -R \(user.uid):\(user.uid) '\(cwd)'").status == 0)
    let data = cwd + "/store"
    for from in [["--from-oci", source + ":t"], ["--from-oci", cwd + "/src.tar:t"], ["--from-docker-archive", cwd + "/docker.tar"]] {
        let first = try plashAs(user, ["build"] + from, data: data, directory: cwd)
        #expect(first.status == 0 && first.stdout == "2\n", "\(from): \(first)")
        let second = try user.run("/usr/bin/prlimit", ["--nproc=1", userPlash, "build"] + from,
                                  environment: ["PLASH_DATA": data], directory: cwd)
        #expect(second.status == 0 && second.stdout == "2\n" && second.stderr == "", "\(from): \(second)")
    }
    // A changed layout is imported again.
    #expect(try shell("touch '\(cwd)/docker.tar'").status == 0)
    let changed = try user.run("/usr/bin/prlimit", ["--nproc=1", userPlash, "build", "--from-docker-archive", cwd + "/docker.tar"],
                               environment: ["PLASH_DATA": data], directory: cwd)
    #expect(changed.status != 0 && changed.stderr.contains("fork"), "\(changed)")
}

/// --from-docker inside build and run, as an ordinary user; a failed pull is one line.
@Test func anOrdinaryUserBuildsAndRunsFromARegistrysImage() throws {
    let user = try userWithSubordinateIDs
    let cwd = makeDirectory("userfromdocker", ownedBy: user)
    let (_, dir) = try exportedLayout(TestStore())
    let registry = try RegistryServer()
    defer { registry.stop() }
    try registry.push(dir + "/layout", tag: "t", as: "plash/user:1")
    let data = cwd + "/store"
    let reference = registry.host + "/plash/user:1"
    let built = try plashAs(user, ["build", "--from-docker", reference, "--run", "stat -c %u /bin/busybox > /owner"],
                            data: data, directory: cwd)
    #expect(built.status == 0 && built.stdout == "4\n", "\(built)")
    let seen = try plashAs(user, ["run", "--from-docker", reference, "--", "sh", "-c", "ls /d; ls /gone; stat -c %u /bin/busybox"],
                           data: data, directory: cwd)
    #expect(seen.stdout == "n\n0\n" && seen.stderr.contains("/gone: No such file or directory"), "\(seen)")
    #expect(try plashAs(user, ["run", "4", "cat", "/owner"], data: data, directory: cwd).stdout == "0\n")
    #expect(try rootOwnedFiles([data]) == "")
    let missing = try plashAs(user, ["run", "--from-docker", registry.host + "/plash/user:nosuch", "--", "true"], data: data, directory: cwd)
    #expect(missing.status == 125 && missing.stderr.hasPrefix("plash: import-docker \(registry.host)/plash/user:nosuch: ")
            && missing.stderr.contains("HTTP 404") && missing.stderr.split(separator: "\n").count == 1, "\(missing)")
}
