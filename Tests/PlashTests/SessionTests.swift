import Foundation
import PlashTestSupport
import Testing

/// The quick start of the issue, byte for byte on stdout, and what ids mean.
@Suite struct SessionTests {
    @Test func theQuickStartSessionPrintsExactlyTheIds() throws {
        let store = TestStore()
        var transcript = ""
        var first: Finished? = nil, cached: Finished? = nil
        for (index, arguments) in quickStartSession.enumerated() {
            let result = try store.plash(arguments)
            #expect(result.status == 0, "\(arguments): \(result)")
            transcript += result.stdout
            if index == 1 { first = result }
            if index == 2 { cached = result }
        }
        #expect(transcript == quickStartTranscript)
        #expect(first?.stderr.contains("--> touch /file\n") == true)
        #expect(first?.stderr.contains("--:\n") == true)
        #expect(cached?.stderr == "")
    }

    @Test func fromBusyboxAloneIsImageOne() throws {
        let store = TestStore()
        #expect(try store.id(["build", "--from", "busybox"]) == "1")
        #expect(try store.id(["import", "busybox"]) == "1")
    }

    @Test func parentPrintsTheImageBelow() throws {
        let store = TestStore()
        let top = try store.id(["build", "--from", "busybox", "--run", "touch /a", "--layer", "--run", "touch /b"])
        #expect(top == "3")
        #expect(try store.plash(["parent", "3"]).stdout == "2\n")
        #expect(try store.plash(["parent", "1"]).stdout == "0\n")
    }

    @Test func removingAnImageRemovesTheImagesBuiltOnIt() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox", "--run", "touch /a", "--layer", "--run", "touch /b"])
        #expect(try store.plash(["rm", "2"]).status == 0)
        #expect(store.indexedIDs == [1])
        #expect(try store.nodes == ["./1"])
        let gone = try store.plash(["run", "3", "--", "true"])
        #expect(gone.status == 125)
        #expect(gone.stderr == "plash: no image 3\n")
    }

    @Test func removedIdsAreNotReusedUntilAPurge() throws {
        let store = TestStore()
        #expect(try store.id(["build", "--from", "busybox", "--run", "touch /a"]) == "2")
        #expect(try store.plash(["rm", "2"]).status == 0)
        #expect(try store.plash(["rm", "2"]).stderr == "plash: no image 2\n")
        #expect(try store.id(["build", "--from", "busybox", "--run", "touch /a"]) == "3")
        #expect(try store.plash(["purge", "--yes"]).status == 0)
        #expect(try store.id(["build", "--from", "busybox"]) == "1")   // purge starts over, as the original
    }

    @Test func theStoreIsLaidOutAsTheDesignSays() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox", "--run", "touch /file"])
        let fm = FileManager.default
        #expect(try fm.destinationOfSymbolicLink(atPath: store.data + "/index/2") == "../layer/0/1/2")
        #expect(fm.fileExists(atPath: store.data + "/layer/0/1/2/_data/file"))
        #expect(fm.fileExists(atPath: store.data + "/layer/0/1/_data/bin/busybox"))
        #expect(try store.plash(["nodepath", "2"]).stdout == store.data + "/layer/0/1/2\n")
        // plash-exec finds images in the store by itself.
        let direct = try run(plashExec, ["2", "--", "ls", "/file"], environment: store.environment)
        #expect(direct.stdout == "/file\n", "\(direct)")
    }

    @Test func aBuildLeavesNoMountPointsOfTheCallerInTheLayer() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox", "--run", "touch /file"])
        let listing = try shell("cd '\(store.data)/layer/0/1/2/_data' && find . | sort").stdout
        #expect(listing == ".\n./file\n")
    }
}
