import Foundation
import PlashKit
import PlashTestSupport
import Testing

/// Deep images: an image's node keeps the nesting of its layers (nodepath, parent, rm),
/// its files lie flat in files/ID, so each layer costs the same to open and to mount;
/// up to the 500 layers overlayfs stacks, and builds and imports beyond that are
/// refused before they write anything.
@Suite struct DepthTests {
    /// A store with an image of `layers` layers imported from an OCI layout, and its id.
    func deepImage(_ layers: Int) throws -> (store: TestStore, id: String) {
        let store = TestStore()
        let layout = makeDirectory("deep") + "/layout"
        try writeDeepLayout(layout, layers: layers)
        return (store, try store.id(["import-oci", layout + ":t"]))
    }

    /// files/: each image's files/ID, and files/ID.flat of every 32nd (FlatLayerTests).
    func files(_ store: TestStore) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: store.data + "/files")) ?? []).sorted()
    }

    @Test func anImageOf500LayersRunsWithTheFileOfEveryLayerAlsoThroughMount2() throws {
        let (store, id) = try deepImage(500)
        for overlay in ["", "lowerdir"] {
            let listed = try store.plash(["run", id, "--", "sh", "-c", "ls / | grep -c '^l[0-9]'"],
                                         environment: ["PLASH_OVERLAY": overlay])
            #expect(listed.status == 0 && listed.stdout == "500\n", "\(overlay): \(listed)")
        }
        #expect(files(store).filter { !$0.hasSuffix(".flat") }.count == 500)
        // Its overlay stacks 20 layers and the flat copy of the 480th, which stands for the rest.
        let options = try store.plash(["run", id, "--", "sh", "-c", "grep -o 'lowerdir+=[^,]*' /proc/self/mountinfo | wc -l"])
        #expect(options.stdout == "21\n" && files(store).filter { $0.hasSuffix(".flat") }.count == 15, "\(options)")
        // The node is nested as the original's: its path names every image below it.
        let node = try store.id(["nodepath", id])
        #expect(node.hasPrefix(store.data + "/layer/0/1/2/") && node.split(separator: "/").suffix(500).count == 500)
    }

    @Test func aBuildOfMoreThan500LayersIsRefusedBeforeItStoresAnything() throws {
        let (store, id) = try deepImage(499)
        let (indexed, stored) = (store.indexedIDs, files(store))
        let refused = try store.plash(["build", "--from", id, "--run", "touch /a", "--layer", "--run", "touch /b"])
        #expect(refused.status == 1 && refused.stderr == "plash: build: 501 layers: an image has at most 500 (overlayfs stacks no more)\n",
                "\(refused)")
        #expect(store.indexedIDs == indexed && files(store) == stored && store.stagingDirectories == [])
        let top = try store.id(["build", "--from", id, "--run", "touch /a"])
        #expect(try store.plash(["run", top, "--", "ls", "/a", "/l499"]).stdout == "/a\n/l499\n")
    }

    @Test func createAndAddLayerOnAnImageOf500LayersAreRefusedAndKeepTheDirectory() throws {
        let (store, id) = try deepImage(500)
        let (indexed, stored) = (store.indexedIDs, files(store))
        let created = try store.plash(["create", id, "touch", "/a"])
        #expect(created.status == 1 && created.stderr.hasSuffix("create: 501 layers: an image has at most 500 (overlayfs stacks no more)\n"),
                "\(created)")
        let dir = makeDirectory("layer")
        #expect(FileManager.default.createFile(atPath: dir + "/kept", contents: Data("mine".utf8)))
        let added = try store.plash(["add-layer", id, dir])
        #expect(added.status == 1 && added.stderr.hasSuffix("501 layers: an image has at most 500 (overlayfs stacks no more)\n"),
                "\(added)")
        #expect(try String(contentsOfFile: dir + "/kept", encoding: .utf8) == "mine")
        #expect(store.indexedIDs == indexed && files(store) == stored && store.stagingDirectories == [])
    }

    @Test func anOCILayoutOfMoreThan500LayersIsRefusedAndStoresNothing() throws {
        let store = TestStore()
        let layout = makeDirectory("deep") + "/layout"
        try writeDeepLayout(layout, layers: 501)
        let refused = try store.plash(["import-oci", layout + ":t"])
        #expect(refused.status == 1 && refused.stderr.hasSuffix(": 501 layers: an image has at most 500 (overlayfs stacks no more)\n")
                && refused.stderr.split(separator: "\n").count == 1, "\(refused)")
        #expect(store.indexedIDs == [] && files(store) == [] && store.stagingDirectories == [])
    }

    @Test func removingAnImageRemovesTheFilesOfEveryImageBuiltOnIt() throws {
        let store = TestStore()
        let two = try store.id(["build", "--from", "busybox", "--run", "touch /two"])
        let three = try store.id(["build", "--from", two, "--run", "touch /three"])
        #expect(files(store) == ["1", two, three].sorted())
        #expect(try store.plash(["rm", two]).status == 0)
        #expect(files(store) == ["1"] && store.indexedIDs == [1])
    }

    /// What a crash between removing a node and its files leaves.
    @Test func cleanRemovesFilesThatNoImageNames() throws {
        let store = TestStore()
        let two = try store.id(["build", "--from", "busybox", "--run", "touch /two"])
        #expect(try shell("mkdir -p '\(store.data)/files/77/d' && touch '\(store.data)/files/77/d/f'").status == 0)
        #expect(try store.plash(["clean"]).status == 0)
        #expect(files(store) == ["1", two])
        #expect(try store.plash(["run", two, "--", "ls", "/two"]).stdout == "/two\n")
    }

    /// Every mount of an image reads the xattrs of each of its layers' roots: a built
    /// layer's root keeps none of the marks its build's overlay left there, only the
    /// opaque marks below, which hide the layers under them.
    @Test func aBuiltLayersRootKeepsNoMarkOfTheOverlayItWasBuiltIn() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "mkdir /d && touch /d/f", "--layer",
                               "--run", "touch /file && rm -r /d && mkdir /d"])
        let names = { (path: String) in
            try run("/usr/bin/python3", ["-c", "import os, sys; print(sorted(os.listxattr(sys.argv[1])))", path]).stdout
        }
        #expect(try names(store.data + "/files/" + id) == "[]\n")
        #expect(try names(store.data + "/files/" + id + "/d") == "['trusted.overlay.opaque']\n")
    }

    /// An image is its index link, its node and its files: a node whose files/ID is gone
    /// (its _data link left dangling) names no image.
    @Test func aNodeWhoseFilesAreGoneNamesNoImage() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "touch /file"])
        #expect(try store.plash(["nodepath", id]).status == 0)
        #expect(try shell("mv '\(store.data)/files/\(id)' '\(makeDirectory("moved"))/'").status == 0)
        let found = try store.plash(["nodepath", id])
        #expect(found.status != 0 && found.stdout == "", "\(found)")
    }

    /// A store of an older plash keeps each image's files in its node, `_data`: those
    /// images run, take images built on them, and go with them.
    @Test func imagesOfAnOlderPlashRunAndTakeNewImagesOnThem() throws {
        let store = TestStore()
        let two = try store.id(["build", "--from", "busybox", "--run", "touch /two"])
        // The nodes of 1 and 2 as an older plash wrote them.
        #expect(try shell("""
            cd '\(store.data)' && rm layer/0/1/_data layer/0/1/\(two)/_data && mv files/1 layer/0/1/_data \
            && mv files/\(two) layer/0/1/\(two)/_data
            """).status == 0)
        #expect(files(store) == [])
        #expect(try store.plash(["run", two, "--", "ls", "/two"]).stdout == "/two\n")
        let three = try store.id(["build", "--from", two, "--run", "touch /three"])
        #expect(files(store) == [three])
        #expect(try store.plash(["run", three, "--", "ls", "/two", "/three"]).stdout == "/three\n/two\n")
        #expect(try store.plash(["export-tar", three, makeDirectory("out") + "/out.tar"]).status == 0)
        #expect(try store.plash(["rm", "1"]).status == 0)
        #expect(files(store) == [] && store.indexedIDs == [])
    }
}
