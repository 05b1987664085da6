import Foundation
import Testing
import PlashTestSupport

// Nothing an image or a command line says may create, change or leave anything on the
// host outside the image's own tree, the store and the --persist directory.

/// A one-program image (busybox as /bin/sh) whose `/etc` is a symlink to `target`.
func imageWithEtc(linkingTo target: String) throws -> String {
    let image = makeDirectory("evil")
    try FileManager.default.createDirectory(atPath: image + "/bin", withIntermediateDirectories: true)
    try copyExecutable("/bin/busybox", to: image + "/bin/sh")
    try FileManager.default.createSymbolicLink(atPath: image + "/etc", withDestinationPath: target)
    return image
}

func entries(_ dir: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
}

@Test func aSymlinkIntoASharedDirectoryNeverCreatesMountPointsOnTheHost() throws {
    // The working directory is shared; the image's /etc leads into it.
    let shared = makeDirectory("cwd")
    let hostEtc = shared + "/etc"
    try FileManager.default.createDirectory(atPath: hostEtc, withIntermediateDirectories: true)
    let image = try imageWithEtc(linkingTo: hostEtc)
    let result = try exec(["--root", image, "--", "/bin/sh", "-c", "true"], directory: shared)
    #expect(entries(hostEtc).isEmpty, "plash-exec created \(entries(hostEtc)) in the host's \(hostEtc)")
    #expect(result.status == 125)
    #expect(result.stderr == "plash-exec: create mount point /etc/resolv.conf: /etc leads out of the image into a directory shared with the host\n",
            "\(result)")
}

@Test func aBindDestinationInASharedDirectoryIsNotCreatedOnTheHost() throws {
    let name = "/tmp/plash-test-\(getpid())-bind-destination"
    let result = try inBusybox("true", options: ["--bind", "\(makeDirectory("src")):\(name)/sub"])
    #expect(!FileManager.default.fileExists(atPath: name), "plash-exec created \(name) on the host")
    #expect(result.status == 125)
    #expect(result.stderr.hasPrefix("plash-exec: create mount point \(name)/sub: "), "\(result)")
}

@Test func theHostRootRunsAsAThrowAwayImage() throws {
    let before = entries("/")
    let file = "/plash-test-\(getpid())-root"
    let result = try exec(["--root", "/", "--", "/bin/sh", "-c", "echo x > \(file) && cat \(file) && ls /bin/sh"])
    #expect(result.status == 0, "\(result)")
    #expect(result.stdout == "x\n/bin/sh\n")
    #expect(entries("/") == before)
}

@Test func persistOnTheHostRootIsRefusedBeforeAnythingIsWritten() throws {
    let before = entries("/")
    let result = try inBusybox("true", options: ["--persist", "/"])
    #expect(result.status == 125)
    #expect(result.stderr == "plash-exec: --persist /: the work directory must live beside the persist directory; give one of its own\n")
    #expect(entries("/") == before)
}

@Test func aPersistArgumentThatIsNoDirectoryLeavesNothingBehind() throws {
    let dir = makeDirectory("persist")
    FileManager.default.createFile(atPath: dir + "/file", contents: Data("x".utf8))
    let result = try inBusybox("true", options: ["--persist", dir + "/file"])
    #expect(result.status == 125)
    #expect(result.stderr == "plash-exec: --persist \(dir)/file: Not a directory\n")
    let missingParent = try inBusybox("true", options: ["--persist", dir + "/missing/upper"])
    #expect(missingParent.status == 125)
    #expect(missingParent.stderr == "plash-exec: --persist \(dir)/missing/upper: No such file or directory\n")
    #expect(entries(dir) == ["file"])
    let empty = try inBusybox("true", options: ["--persist", ""], directory: dir)
    #expect(empty.status == 125)
    #expect(empty.stderr == "plash-exec: --persist: needs a directory\n")
    #expect(entries(dir) == ["file"])
}

@Test func aFailedStartRemovesThePersistDirectoriesItCreated() throws {
    let dir = makeDirectory("persist")
    let result = try inBusybox("true", options: ["--persist", dir + "/upper", "--bind", "/nonexistent:/x"])
    #expect(result.status == 125)
    #expect(result.stderr == "plash-exec: bind source /nonexistent: No such file or directory\n")
    #expect(entries(dir).isEmpty)
    // A start that gets as far as mounting, with mount points made in the upper layer.
    let image = try imageWithEtc(linkingTo: dir + "/nowhere")
    let mounted = try exec(["--persist", dir + "/upper", "--root", image, "--", "/bin/sh", "-c", "exit 3"])
    #expect(mounted.status == 3)
    let outside = "/tmp/plash-test-\(getpid())-persist-bind"
    let failed = try exec(["--persist", dir + "/other", "--bind", "\(dir):\(outside)/sub", "--root", image, "--", "/bin/sh"])
    #expect(failed.status == 125)
    #expect(failed.stderr.hasPrefix("plash-exec: create mount point \(outside)/sub: "), "\(failed)")
    #expect(entries(dir) == [".upper.plash-work", "upper"])
}

@Test func twoContainersCannotShareAPersistDirectoryAtOnce() throws {
    let upper = makeDirectory("persist") + "/upper"
    let first = try start(["--persist", upper, "--root", busyboxRoot, "--", "sh", "-c", "echo up; read x"],
                          stdin: .pipe)
    #expect(first.readLine() == "up")
    let second = try inBusybox("true", options: ["--persist", upper])
    #expect(second.status == 125)
    #expect(second.stderr == "plash-exec: --persist \(upper): in use by another container (two overlays must not share an upper layer)\n")
    _ = first.finish()
    #expect(try inBusybox("echo again", options: ["--persist", upper]).stdout == "again\n")
}

@Test func aHomeThatIsADirectoryOfTheImageDoesNotHideIt() throws {
    // Debian's bin user has the home /bin, www-data /var/www.
    let result = try inBusybox("cat /etc/group; echo $HOME", environment: ["HOME": "/etc"])
    #expect(result.stdout == "root:x:0:\n/etc\n", "\(result)")
}

@Test func aHomeTheImageLacksIsShared() throws {
    let home = makeDirectory("home")
    FileManager.default.createFile(atPath: home + "/mine", contents: Data("mine\n".utf8))
    #expect(try inBusybox("cat $HOME/mine", environment: ["HOME": home]).stdout == "mine\n")
}

/// `count` layer directories with a file each, plus the busybox root: --lower arguments.
func deepLayers(_ count: Int) throws -> [String] {
    let base = makeDirectory("deep")
    var arguments: [String] = []
    for n in (1..<count).reversed() {
        let layer = "\(base)/layer-\(n)"
        try FileManager.default.createDirectory(atPath: layer, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: "\(layer)/file-\(n)", contents: nil)
        arguments += ["--lower", layer]
    }
    return arguments + ["--lower", try busyboxRoot]
}

@Test func anImageOf500LayersRuns() throws {
    let result = try exec(try deepLayers(500) + ["--", "sh", "-c", "ls / | grep -c '^file-'"])
    #expect(result.status == 0, "\(result)")
    #expect(result.stdout == "499\n", "\(result)")
}

@Test func anImageOf501LayersIsRefusedNamingTheLimit() throws {
    let result = try exec(try deepLayers(501) + ["--", "true"])
    #expect(result.status == 125)
    #expect(result.stderr == "plash-exec: 501 layers: an image has at most 500 (overlayfs stacks no more)\n")
}

@Test func theHostsRootIsNotReachableFromInside() throws {
    for image in [try busyboxRoot, "/"] {
        let result = try exec(["--root", image, "--", "/bin/sh", "-c",
                               "head -1 /proc/self/mountinfo | cut -d' ' -f5,8; [ \"$(ls -a /proc/..)\" = \"$(ls -a /)\" ] && echo same"])
        #expect(result.stdout == "/ overlay\nsame\n", "\(image): \(result)")
    }
}
