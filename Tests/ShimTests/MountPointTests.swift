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
/// a file through each of them (`bound cwd home`); its output is returned with what the
/// persist directory holds.
func persistedRun(_ script: String, root: String, as user: TestUser? = nil,
                  environment: [String: String] = [:]) throws -> (Finished, [String]) {
    let owned: (String) -> String = { name in user.map { makeDirectory(name, ownedBy: $0) } ?? makeDirectory(name) }
    let cwd = owned("cwd"), home = owned("home"), source = owned("source"), upper = owned("persist") + "/upper"
    for (dir, text) in [(source, "bound"), (cwd, "cwd"), (home, "home")] {
        try "\(text)\n".write(toFile: dir + "/file", atomically: false, encoding: .utf8)
    }
    let arguments = ["--persist", upper, "--bind", source + ":/srv/in/bound", "--root", root, "--",
                     "sh", "-c", "cat /srv/in/bound/file ./file \(home)/file | tr '\\n' ' '; echo; test -d /proc/self && " + script]
    let environment = environment.merging(["HOME": home]) { $1 }
    let result = try user.map { try $0.run(userExec, arguments, environment: environment, directory: cwd) }
        ?? (try run(plashExec, arguments, environment: environment, directory: cwd))
    return (result, try persistedPaths(upper))
}

@Test func aPersistDirectoryKeepsOnlyWhatTheContainerWrote() throws {
    let (result, kept) = try persistedRun("touch /written", root: try rootWithoutMountPoints())
    #expect(result.status == 0 && result.stdout == "bound cwd home \n", "\(result)")
    #expect(kept == ["./written f"])
}

@Test func anOrdinaryUsersPersistDirectoryKeepsOnlyWhatTheContainerWrote() throws {
    let user = try userWithSubordinateIDs
    let (result, kept) = try persistedRun("touch /written", root: try rootWithoutMountPoints(user), as: user)
    #expect(result.status == 0 && result.stdout == "bound cwd home \n", "\(result)")
    #expect(kept == ["./written f"])
}

@Test func aPersistDirectoryOfFuseOverlayfsKeepsOnlyWhatTheContainerWrote() throws {
    try requirePresent(fuseMissing(forOrdinaryUsers: true))
    let user = try userWithSubordinateIDs
    // One fuse-overlayfs serves it: the one that served the image alone is gone.
    let servers = "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' <$f; echo; done 2>/dev/null | grep -c '^/usr/bin/fuse-overlayfs .*upperdir='"
    let (result, kept) = try persistedRun("grep -c ' / / .*fuse-overlayfs' /proc/self/mountinfo; \(servers); touch /written",
                                          root: try rootWithoutMountPoints(user), as: user, environment: ["PLASH_OVERLAY": "fuse"])
    #expect(result.status == 0 && result.stdout == "bound cwd home \n1\n1\n", "\(result)")
    #expect(kept == ["./written f"])
}

@Test func aWriteBesideAMountPointKeepsTheDirectoryButNotTheMountPoint() throws {
    // /etc gets resolv.conf and hosts; /srv, which the image lacks, gets in/bound.
    let (result, kept) = try persistedRun("touch /etc/new /srv/new && { ls /etc; ls /srv; } | tr '\\n' ' '",
                                          root: try rootWithoutMountPoints())
    #expect(result.status == 0, "\(result)")
    #expect(result.stdout == "bound cwd home \ngroup hosts new passwd resolv.conf in new ", "\(result)")
    #expect(kept == ["./etc d", "./etc/new f", "./srv d", "./srv/new f"])
}

@Test func aDirectoryThatGetsAMountPointKeepsItsOwnerModeAndTime() throws {
    let root = try rootWithoutMountPoints()
    let made = try shell("mkdir -m 750 '\(root)/srv' && chown 1000:1000 '\(root)/srv' && touch -d @1000000000 '\(root)/srv'")
    #expect(made.status == 0, "\(made)")
    let (result, kept) = try persistedRun("stat -c '%a %u:%g %Y' /srv", root: root)
    #expect(result.stdout == "bound cwd home \n750 1000:1000 1000000000\n", "\(result)")
    #expect(kept.isEmpty)
}

@Test func aDanglingSymlinkWhereAMountPointGoesIsCoveredWithoutAWhiteout() throws {
    let root = try rootWithoutMountPoints()
    try FileManager.default.createSymbolicLink(atPath: root + "/etc/resolv.conf", withDestinationPath: "/run/nowhere/resolv.conf")
    let (result, kept) = try persistedRun("cat /etc/resolv.conf", root: root)
    let host = try String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)
    #expect(result.stdout == "bound cwd home \n" + host, "\(result)")
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

@Test func aBindDestinationThroughDotDotMakesNothingOutsideTheImage() throws {
    // `..` below a missing directory must not climb out of the mount points' layer:
    // fuse-overlayfs' scratch tmpfs lies over the image's directory on the host, and
    // the directory below is one its user may write.
    try requirePresent(fuseMissing(forOrdinaryUsers: true))
    let user = try userWithSubordinateIDs
    let outside = makeDirectory("outside", ownedBy: user)
    let destination = "/made" + String(repeating: "/..", count: 12) + outside + "/evil"
    let root = try rootWithoutMountPoints(user)
    for (name, environment) in [("root", [:]), ("fuse-overlayfs", ["PLASH_OVERLAY": "fuse"])] {
        let arguments = ["--persist", makeDirectory("persist", ownedBy: user) + "/upper",
                         "--bind", makeDirectory("source", ownedBy: user) + ":" + destination, "--root", root, "--", "true"]
        let result = try name == "root" ? run(plashExec, arguments) : user.run(userExec, arguments, environment: environment)
        #expect(!FileManager.default.fileExists(atPath: outside + "/evil"), "\(name): plash-exec created \(outside)/evil on the host")
        #expect(result.status == 125, "\(name): \(result)")
    }
}

@Test func aWorkingDirectoryInTheStoreGetsNoMountPointWithPersist() throws {
    let data = try makeStore(at: makeDirectory("store") + "/plash")
    let cwd = data + "/layer/0/1/_data"
    let result = try exec(["--persist", makeDirectory("persist") + "/upper", "1", "--", "sh", "-c", "pwd; test -e \(cwd) || echo absent"],
                          environment: ["PLASH_DATA": data], directory: cwd)
    #expect(result.stdout == "/\nabsent\n", "\(result)")
}

@Test func anImageOf500LayersRunsWithPersistToo() throws {
    // overlayfs stacks no layer more: its mount points go to the writable layer.
    let upper = makeDirectory("persist") + "/upper"
    let result = try exec(["--persist", upper] + (try deepLayers(500)) + ["--", "sh", "-c", "ls / | grep -c '^file-'"])
    #expect(result.status == 0 && result.stdout == "499\n", "\(result)")
}

@Test func theMountPointsFollowASymlinkThatAnEarlierRunKeptInThePersistDirectory() throws {
    let root = try rootWithoutMountPoints()
    let upper = makeDirectory("persist") + "/upper"
    let source = makeDirectory("source")
    try "bound\n".write(toFile: source + "/file", atomically: false, encoding: .utf8)
    let first = try exec(["--persist", upper, "--root", root, "--", "sh", "-c", "mkdir /elsewhere && ln -s /elsewhere /data"])
    #expect(first.status == 0, "\(first)")
    let second = try exec(["--persist", upper, "--bind", source + ":/data/in", "--root", root, "--", "cat", "/elsewhere/in/file"])
    #expect(second.stdout == "bound\n", "\(second)")
    #expect(try persistedPaths(upper) == ["./data l", "./elsewhere d"])
}

@Test func theHostRootWithAPersistDirectoryKeepsOnlyWhatTheContainerWrote() throws {
    // The persist directory lies inside the image, /.
    let before = entries("/")
    let upper = makeDirectory("persist") + "/upper"
    let missing = "/plash-test-\(getpid())-missing"
    let result = try exec(["--persist", upper, "--bind", makeDirectory("source") + ":" + missing, "--root", "/", "--",
                           "sh", "-c", "test -d \(missing) && touch /plash-test-\(getpid())-written"], directory: "/")
    #expect(result.status == 0, "\(result)")
    #expect(try persistedPaths(upper) == ["./plash-test-\(getpid())-written f"])
    #expect(entries("/") == before)
}
