import Foundation
import PlashTestSupport
import Testing

/// The original's commands and Plashfiles tried as its users, and hostile ones, would
/// (issue 12's check): odd input fails with one line and loses nothing.
@Suite struct CompatEdgeTests {
    /// add-layer renames DIR: a DIR in the store (reached directly or through a symlink)
    /// would move an image's files away, a symlink would make the image the host's directory.
    @Test func addLayerRefusesTheStoresOwnDirectoriesAndSymlinks() throws {
        let store = TestStore()
        let two = try store.id(["build", "--from", "busybox", "--run", "echo two > /two"])
        let node = try store.id(["nodepath", two])
        let link = makeDirectory() + "/link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: node)
        let host = makeDirectory()
        let hostLink = makeDirectory() + "/host"
        try FileManager.default.createSymbolicLink(atPath: hostLink, withDestinationPath: host)
        for dir in [node + "/_data", link + "/_data", store.data + "/tmp", store.data] {
            let result = try store.plash(["add-layer", "1", dir])
            #expect(result.status == 1 && result.stderr.hasPrefix("plash: add-layer \(dir): lies in the store "), "\(result)")
        }
        let symlink = try store.plash(["add-layer", "1", hostLink])
        #expect(symlink.status == 1 && symlink.stderr == "plash: add-layer \(hostLink): not a directory\n", "\(symlink)")
        #expect(store.indexedIDs == [1, 2])
        #expect(try store.plash(["run", two, "cat", "/two"]).stdout == "two\n")
    }

    /// copy writes into DIR: in the store it would add files to an image.
    @Test func copyRefusesADirectoryInTheStore() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let node = try store.id(["nodepath", "1"])
        for dir in [node + "/_data/new", store.data + "/tmp/copy"] {
            let result = try store.plash(["copy", "1", dir])
            #expect(result.status == 1 && result.stderr.hasPrefix("plash: copy \(dir): lies in the store "), "\(result)")
            #expect(!FileManager.default.fileExists(atPath: dir))
        }
    }
}
