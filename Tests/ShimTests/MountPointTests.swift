import Foundation
import Testing
import PlashTestSupport

// The mount points an image lacks (/proc, /dev, /etc/resolv.conf, homes, the working
// directory, a --bind destination) are made in a layer of their own below the writable
// one: a --persist directory keeps exactly what the container wrote.

/// Every path below `dir` with its type (`c` for a whiteout), as the host sees them.
func persistedPaths(_ dir: String) throws -> [String] {
    try shell("cd '\(dir)' && find . -mindepth 1 -printf '%p %y\\n' | sort").stdout
        .split(separator: "\n").map(String.init)
}

/// A busybox root without /proc, /dev, /sys, /tmp, /home, /srv, resolv.conf or hosts,
/// with a user 1000; owned by `user` when given.
func rootWithoutMountPoints(_ user: TestUser? = nil) throws -> String {
    let root = try makeBusyboxRoot(at: makeDirectory("bare-root"))
    try "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/:/bin/sh\n"
        .write(toFile: root + "/etc/passwd", atomically: false, encoding: .utf8)
    if let user { _ = try shell("chown -R \(user.uid):\(user.uid) '\(root)'") }
    return root
}

/// plash-exec --persist in `root`, started from a working directory, with a $HOME outside
/// /home and a --bind destination, none of which the image has. The script first reads
/// through each of them; its output is returned with what the persist directory holds.
func persistedRun(_ script: String, root: String, as user: TestUser? = nil) throws -> (Finished, [String]) {
    let owned: (String) -> String = { name in user.map { makeDirectory(name, ownedBy: $0) } ?? makeDirectory(name) }
    let cwd = owned("cwd"), home = owned("home"), source = owned("source"), upper = owned("persist") + "/upper"
    try "bound\n".write(toFile: source + "/file", atomically: false, encoding: .utf8)
    let arguments = ["--persist", upper, "--bind", source + ":/srv/in/bound", "--root", root, "--",
                     "sh", "-c", "cat /srv/in/bound/file; test -d \(cwd) && test -d \(home) && test -d /proc/self && " + script]
    let result = try user.map { try $0.run(userExec, arguments, environment: ["HOME": home], directory: cwd) }
        ?? (try run(plashExec, arguments, environment: ["HOME": home], directory: cwd))
    return (result, try persistedPaths(upper))
}

@Test func aPersistDirectoryKeepsOnlyWhatTheContainerWrote() throws {
    let (result, kept) = try persistedRun("touch /written", root: try rootWithoutMountPoints())
    #expect(result.status == 0 && result.stdout == "bound\n", "\(result)")
    #expect(kept == ["./written f"])
}

@Test func anOrdinaryUsersPersistDirectoryKeepsOnlyWhatTheContainerWrote() throws {
    let user = try userWithSubordinateIDs
    let (result, kept) = try persistedRun("touch /written", root: try rootWithoutMountPoints(user), as: user)
    #expect(result.status == 0 && result.stdout == "bound\n", "\(result)")
    #expect(kept == ["./written f"])
}

@Test func aWriteBesideAMountPointKeepsTheDirectoryButNotTheMountPoint() throws {
    // /etc gets resolv.conf and hosts; /srv, which the image lacks, gets in/bound.
    let (result, kept) = try persistedRun("touch /etc/new /srv/new && { ls /etc; ls /srv; } | tr '\\n' ' '",
                                          root: try rootWithoutMountPoints())
    #expect(result.status == 0, "\(result)")
    #expect(result.stdout == "bound\ngroup hosts new passwd resolv.conf in new ", "\(result)")
    #expect(kept == ["./etc d", "./etc/new f", "./srv d", "./srv/new f"])
}

@Test func aDirectoryThatGetsAMountPointKeepsItsOwnerModeAndTime() throws {
    let root = try rootWithoutMountPoints()
    let made = try shell("mkdir -m 750 '\(root)/srv' && chown 1000:1000 '\(root)/srv' && touch -d @1000000000 '\(root)/srv'")
    #expect(made.status == 0, "\(made)")
    let (result, kept) = try persistedRun("stat -c '%a %u:%g %Y' /srv", root: root)
    #expect(result.stdout == "bound\n750 1000:1000 1000000000\n", "\(result)")
    #expect(kept.isEmpty)
}

@Test func aDanglingSymlinkWhereAMountPointGoesIsCoveredWithoutAWhiteout() throws {
    let root = try rootWithoutMountPoints()
    try FileManager.default.createSymbolicLink(atPath: root + "/etc/resolv.conf", withDestinationPath: "/run/nowhere/resolv.conf")
    let (result, kept) = try persistedRun("cat /etc/resolv.conf", root: root)
    let host = try String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)
    #expect(result.stdout == "bound\n" + host, "\(result)")
    #expect(kept.isEmpty)
}

@Test func theNextRunOnTheSamePersistDirectorySeesTheWritesAndMountsAgain() throws {
    let root = try rootWithoutMountPoints()
    let upper = makeDirectory("persist") + "/upper"
    for script in ["mkdir /etc/made && touch /etc/made/file", "ls /etc/made && test -s /etc/hosts"] {
        let result = try exec(["--persist", upper, "--root", root, "--", "sh", "-c", script])
        #expect(result.status == 0, "\(result)")
    }
    #expect(try persistedPaths(upper) == ["./etc d", "./etc/made d", "./etc/made/file f"])
}
