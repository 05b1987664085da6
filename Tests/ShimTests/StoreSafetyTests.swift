import Foundation
import Testing
import PlashTestSupport

// The store is never within a container's reach, and no link in it crashes plash-exec.

/// A store made directly on disk: image 1 is the busybox root, each further image a
/// layer with one file, `file-N`, on the one before.
func makeStore(at data: String, depth: Int = 1) throws -> String {
    let fm = FileManager.default
    for dir in ["index", "map", "cache", "tmp"] {
        try fm.createDirectory(atPath: data + "/" + dir, withIntermediateDirectories: true)
    }
    var node = data + "/layer/0"
    var relative = "../layer/0"
    for id in 1...depth {
        node += "/\(id)"
        relative += "/\(id)"
        try fm.createDirectory(atPath: node, withIntermediateDirectories: true)
        if id == 1 {
            #expect(try run("/bin/cp", ["-a", busyboxRoot, node + "/_data"]).status == 0)
        } else {
            try fm.createDirectory(atPath: node + "/_data", withIntermediateDirectories: true)
            fm.createFile(atPath: node + "/_data/file-\(id)", contents: nil)
        }
        try fm.createSymbolicLink(atPath: data + "/index/\(id)", withDestinationPath: relative)
    }
    return data
}

@Test func aContainerCannotWriteTheStoreInItsHome() throws {
    let home = makeDirectory("home")
    let data = try makeStore(at: home + "/.local/share/plash")
    let before = try treeListing(data)
    let result = try exec(["1", "--", "sh", "-c", "touch \(data)/layer/0/1/_data/bin/x; rm \(data)/index/1; ls -A \(data)"],
                          environment: ["HOME": home, "PLASH_DATA": data])
    #expect(result.status == 0 && result.stdout == "", "\(result)")
    #expect(try treeListing(data) == before)
}

@Test func aContainerCannotWriteTheStoreInTmpOrThroughABind() throws {
    let data = "/tmp/plash-test-\(getpid())-store/plash"
    defer { try? FileManager.default.removeItem(atPath: splitParent(data)) }
    _ = try makeStore(at: data)
    let before = try treeListing(data)
    let script = "touch \(data)/layer/0/1/_data/x /mnt/plash/layer/0/1/_data/y; ls -A \(data); echo -; ls -A /mnt/plash"
    let result = try exec(["--bind", "\(splitParent(data)):/mnt", "1", "--", "sh", "-c", script],
                          environment: ["PLASH_DATA": data])
    #expect(result.status == 0 && result.stdout == "-\n", "\(result)")
    #expect(try treeListing(data) == before)
}

@Test func aWorkingDirectoryInTheStoreIsNotShared() throws {
    let data = try makeStore(at: makeDirectory("store") + "/plash")
    let result = try exec(["1", "--", "sh", "-c", "pwd; ls"], environment: ["PLASH_DATA": data],
                          directory: data + "/layer/0/1/_data")
    #expect(result.stdout.hasPrefix("/\n"), "\(result)")
}

@Test func aBindOfSomethingInTheStoreIsRefused() throws {
    let data = try makeStore(at: makeDirectory("store") + "/plash")
    let result = try exec(["--bind", "\(data)/layer:/mnt", "1", "true"], environment: ["PLASH_DATA": data])
    #expect(result.status == 125)
    #expect(result.stderr == "plash-exec: bind \(data)/layer: lies in the store \(data), which no container may reach\n")
}

/// A `..` in a bind's source is resolved by the kernel, never in the text: a way back
/// into the store through `..` is the store.
@Test(arguments: ["--bind", "--ro-bind", "--bind-try"])
func aBindThroughDotDotIntoTheStoreIsRefused(option: String) throws {
    let data = try makeStore(at: makeDirectory("store") + "/plash")
    let outside = makeDirectory("outside")
    let before = try treeListing(data)
    let storeDirectory = splitParent(data).split(separator: "/").last!
    for source in ["\(outside)/../\(storeDirectory)/plash/layer", "\(data)/../plash/layer", "\(data)/./layer"] {
        let result = try exec([option, "\(source):/mnt/plash", "1", "--", "sh", "-c", "touch /mnt/plash/0/1/_data/y; echo ran"],
                              environment: ["PLASH_DATA": data])
        #expect(result.status == 125 && result.stdout == "", "\(source): \(result)")
    }
    #expect(try treeListing(data) == before)
}

/// What a container sees of the store and may do to it from inside, as root: each line
/// says a write failed.
let storeWrites = "for p in plash/layer/0/1/_data/x plash/index/x plash/x; do touch /mnt/$p 2>/dev/null || echo refused; done; "
    + "rm -rf /mnt/plash/index 2>/dev/null; ls -A /mnt/plash"

/// A symlink to the store's parent is the parent: the store in it stays covered, empty
/// and read-only, for each of plash-exec's bind options.
@Test(arguments: ["--bind", "--ro-bind", "--bind-try"])
func aBindThroughASymlinkToTheStoresParentLeavesTheStoreHidden(option: String) throws {
    let data = try makeStore(at: makeDirectory("store") + "/plash")
    let link = makeDirectory("links") + "/parent"
    try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: splitParent(data))
    let before = try treeListing(data)
    let result = try exec([option, "\(link):/mnt", "1", "--", "sh", "-c", storeWrites], environment: ["PLASH_DATA": data])
    #expect(result.status == 0 && result.stdout == "refused\nrefused\nrefused\n", "\(result)")
    #expect(try treeListing(data) == before)
}

/// A symlink to a directory in the store is that directory: refused, and nothing runs.
@Test(arguments: ["--bind", "--ro-bind", "--bind-try"])
func aBindThroughASymlinkIntoTheStoreIsRefused(option: String) throws {
    let data = try makeStore(at: makeDirectory("store") + "/plash")
    let links = makeDirectory("links")
    try FileManager.default.createSymbolicLink(atPath: links + "/layer", withDestinationPath: data + "/layer")
    try FileManager.default.createSymbolicLink(atPath: splitParent(data) + "/store", withDestinationPath: "plash")
    let before = try treeListing(data)
    for source in [links + "/layer", splitParent(data) + "/store"] {
        let result = try exec([option, "\(source):/mnt/plash", "1", "--", "sh", "-c", storeWrites + "; touch /mnt/plash/0/1/_data/y"],
                              environment: ["PLASH_DATA": data])
        #expect(result.status == 125 && result.stdout == "", "\(source): \(result)")
    }
    #expect(try treeListing(data) == before)
}

@Test func linksThatLeadOutOfTheStoreNameNoImage() throws {
    let data = try makeStore(at: makeDirectory("store") + "/plash")
    let links = ["map/root": "/", "map/up": "../index/../../..", "map/loop": "loop", "index/7": "../layer/0/../..",
                 "index/8": "/", "index/9": "../layer/0/1", "map/nine": "../index/9", "map/bad": "../index/01"]
    for (link, target) in links {
        try FileManager.default.createSymbolicLink(atPath: data + "/" + link, withDestinationPath: target)
    }
    for name in ["root", "up", "loop", "7", "8", "9", "nine", "bad"] {
        let result = try exec([name, "true"], environment: ["PLASH_DATA": data])
        #expect(result.signal == nil && result.status == 125, "\(name): \(result)")
        #expect(result.stderr == "plash-exec: no image \(name) in \(data)\n", "\(name): \(result)")
    }
}

@Test func aZeroPaddedIdIsRefusedAlikeByPlashExecAndPlash() throws {
    let data = try makeStore(at: makeDirectory("store") + "/plash")
    let line = "01: not an image id (ids are written without leading zeros)\n"
    let environment = ["PLASH_DATA": data, "HOME": makeDirectory("home")]
    let shim = try exec(["01", "true"], environment: environment)
    #expect(shim.status == 125)
    #expect(shim.stderr == "plash-exec: " + line)
    for arguments in [["run", "01", "true"], ["map", "name", "01"], ["rm", "01"]] {
        let result = try run(plash, arguments, environment: environment)
        #expect(result.status != 0 && result.stderr == "plash: " + line, "\(arguments): \(result)")
    }
    #expect(try exec(["1", "true"], environment: environment).status == 0)
}

@Test func aStoredImageOf500LayersRunsAndMounts() throws {
    let data = try makeStore(at: makeDirectory("store") + "/plash", depth: 500)
    let environment = ["PLASH_DATA": data, "HOME": makeDirectory("home")]
    let result = try exec(["500", "--", "sh", "-c", "ls / | grep -c '^file-'"], environment: environment)
    #expect(result.stdout == "499\n", "\(result)")
    let dir = makeDirectory("mnt")
    let mounted = try run(plash, ["mount", "500", dir], environment: environment)
    #expect(mounted.status == 0, "\(mounted)")
    defer { _ = try? run(plash, ["umount", dir], environment: environment) }
    #expect(entries(dir).filter { $0.hasPrefix("file-") }.count == 499)
}

func splitParent(_ path: String) -> String { (path as NSString).deletingLastPathComponent }

@Test func aPersistDirectoryInOrAroundTheStoreIsRefused() throws {
    // The upper layer is the container's root: in the store it would write an image's
    // files, around it reach them all. --root keeps the overlay from refusing the overlap.
    let parent = makeDirectory("around")
    let data = try makeStore(at: parent + "/plash")
    let before = try treeListing(parent)
    for persist in ["\(data)/layer/0/1/_data", data, parent, "\(data)/tmp", "\(data)/new"] {
        let result = try exec(["--persist", persist, "--root", busyboxRoot, "--", "sh", "-c", "touch /x /plash/x"],
                              environment: ["PLASH_DATA": data])
        #expect(result.status == 125, "\(persist): \(result)")
        #expect(result.stderr == "plash-exec: --persist \(persist): the store \(data) would be within the container's reach\n",
                "\(persist): \(result)")
    }
    #expect(try treeListing(parent) == before)
    // A build's own staging, below tmp/, is where plash build persists its steps.
    let staging = try exec(["--persist", "\(data)/tmp/build-1", "1", "--", "touch", "/x"], environment: ["PLASH_DATA": data])
    #expect(staging.status == 0, "\(staging)")
}

@Test func recordingACgroupInTheStoreFollowsNoSymlinkPlantedThere() throws {
    // cgroups/NAME is made by whoever starts a container: a dangling symlink in its
    // place must not make plash-exec create the file it leads to.
    let data = try makeStore(at: makeDirectory("store") + "/plash")
    let name = cgroupName("planted")
    let target = makeDirectory("outside") + "/created"
    try FileManager.default.createDirectory(atPath: data + "/cgroups", withIntermediateDirectories: true)
    try FileManager.default.createSymbolicLink(atPath: data + "/cgroups/" + name, withDestinationPath: target)
    defer { removeCgroup(name) }
    let result = try exec(["--cgroup", name, "--root", busyboxRoot, "--", "true"], environment: ["PLASH_DATA": data])
    #expect(result.status == 0, "\(result)")
    #expect(!FileManager.default.fileExists(atPath: target), "plash-exec created \(target) through the store's symlink")
}
