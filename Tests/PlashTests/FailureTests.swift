import Foundation
import PlashTestSupport
import Testing

/// Failed and killed builds leave nothing that a later build would reuse.
@Suite struct FailureTests {
    @Test func aFailingBuildNamesTheCommandAndLeavesNothing() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        let before = try treeListing(store.data + "/layer") + treeListing(store.data + "/index")
        let result = try store.plash(["build", "--from", "busybox", "--run", "true", "false", "touch /never"])
        #expect(result.status == 1)
        #expect(result.stdout == "")
        #expect(result.stderr.hasSuffix("plash: build failed: false exited with status 1\n"))
        #expect(!result.stderr.contains("--> touch /never"))
        #expect(try treeListing(store.data + "/layer") + treeListing(store.data + "/index") == before)
        #expect(store.stagingDirectories == [])
    }

    @Test func aBuildStopsAtTheFirstFailingCommandOfAScript() throws {
        let store = TestStore()
        let result = try store.plash(["build", "--from", "busybox", "--run", "false\ntouch /after"])
        #expect(result.status == 1)
        #expect(result.stderr.hasSuffix("plash: build failed: false ... exited with status 1\n"))
    }

    @Test func aKilledBuildIsRebuiltFromScratchAndCleanRemovesItsLeftovers() throws {
        let store = TestStore()
        let dir = makeDirectory()
        _ = FileManager.default.createFile(atPath: dir + "/first", contents: nil)
        // While the step sees ./first (the test removes it after the kill), it waits to be
        // killed, with a process of its own in the background.
        let marker = "plash-killed-build-\(getpid())"
        // Short sleeps: should they survive, the marked shells are the ones to kill.
        let wait = "sh -c 'while :; do sleep 1; done' \(marker)"
        let build = ["build", "--from", "busybox", "--run",
                     "touch /made; if [ -e first ]; then \(wait) & exec \(wait); fi"]
        let child = try Child(plash, build, environment: store.environment, directory: dir)
        #expect(waitUntil(30) { processes(markedWith: marker).count == 2 }, "the step did not start")
        kill(child.pid, SIGKILL)
        _ = child.wait()
        // Nothing of the step may go on writing into its staging layer.
        #expect(waitUntil(10) { processes(markedWith: marker).isEmpty }, "the step must die with its plash")
        processes(markedWith: marker).forEach { kill($0, SIGKILL) }   // should they have survived
        _ = child.finish()
        #expect(store.indexedIDs == [1])
        #expect(store.stagingDirectories.count == 1)
        unlink(dir + "/first")

        let again = try store.plash(build, directory: dir)
        #expect(again.status == 0, "\(again)")
        #expect(again.stderr.contains("--> touch /made"))
        #expect(again.stdout == "2\n")
        #expect(try store.plash(["run", "2", "--", "ls", "/made"]).stdout == "/made\n")

        #expect(try store.plash(["clean"]).status == 0)
        #expect(store.stagingDirectories == [])
        #expect(store.indexedIDs == [1, 2])
    }

    @Test func cleanRemovesNamesOfRemovedImages() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "touch /a"])
        #expect(try store.plash(["map", "thing", id]).status == 0)
        #expect(try store.plash(["rm", id]).status == 0)
        #expect(FileManager.default.fileExists(atPath: store.data + "/map/thing") == false) // dangling: fileExists follows
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: store.data + "/map/thing")) != nil)
        #expect(try store.plash(["clean"]).status == 0)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: store.data + "/map/thing")) == nil)
    }
}
