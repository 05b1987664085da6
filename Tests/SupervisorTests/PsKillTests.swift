import Foundation
import PlashTestSupport
import Testing

/// `plash ps` and `plash kill` find containers through /proc alone.
@Suite struct PsKillTests {
    /// A store whose ids start at a random large number, so that an image id here is
    /// nobody else's: `plash kill IMAGE` must not reach the containers of tests running
    /// beside this one even if the image's store were not told apart.
    static func storeWithUniqueIDs() throws -> TestStore {
        let store = TestStore()
        try store.plash(["init"])
        try "\(Int.random(in: 100_000...999_999_000))\n".write(toFile: store.data + "/counter", atomically: true, encoding: .utf8)
        return store
    }

    /// A container whose program (`sleep 1001`) forked a child (`sleep 1000`).
    /// The child does not hold the test's stdout pipe, so a test that fails still ends.
    static func startContainer(_ store: TestStore, image: String) throws -> Child {
        try Child(plash, ["run", image, "--", "sh", "-c", "sleep 1000 </dev/null >/dev/null 2>&1 & exec sleep 1001"],
                  environment: store.environment)
    }

    /// Kills the container's program and what it forked.
    static func end(_ container: Child, _ children: [pid_t?]) {
        children.compactMap { $0 }.forEach { kill($0, SIGKILL) }
        kill(container.pid, SIGKILL)
        _ = container.finish()
    }

    /// The rows of `plash ps` as [PID: (IMAGE, NAME, COMMAND)], and the header.
    static func ps(_ store: TestStore) throws -> (String, [pid_t: (String, String, String)]) {
        let result = try store.plash(["ps"])
        let lines = result.stdout.split(separator: "\n").map(String.init)
        var rows: [pid_t: (String, String, String)] = [:]
        for line in lines.dropFirst() {
            let words = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: true).map(String.init)
            guard words.count == 4, let pid = pid_t(words[0]) else { continue }
            rows[pid] = (words[1], words[2], words[3].trimmingCharacters(in: .whitespaces))
        }
        return (lines.first ?? "", rows)
    }

    @Test func psListsTheProgramAndItsChildWithTheImage() throws {
        let store = try Self.storeWithUniqueIDs()
        let id = try store.id(["build", "--from", "busybox", "--run", "touch /ps"])
        _ = try store.id(["map", "ps-demo", id])
        let container = try Self.startContainer(store, image: "ps-demo")
        var child: pid_t?
        defer { Self.end(container, [child]) }
        #expect(waitUntil { child = descendants(of: container.pid).first; return child != nil && commandLine(container.pid) == "sleep 1001" })
        let background = try #require(child)

        var (header, rows) = try Self.ps(store)
        #expect(waitUntil { (header, rows) = (try? Self.ps(store)) ?? ("", [:]); return rows[background] != nil })
        #expect(header.split(separator: " ", omittingEmptySubsequences: true) == ["PID", "IMAGE", "NAME", "COMMAND"])
        #expect(rows[container.pid]?.0 == id)
        #expect(rows[container.pid]?.1 == "ps-demo")
        #expect(rows[container.pid]?.2 == "sleep 1001")
        #expect(rows[background]?.0 == id)
        #expect(rows[background]?.2 == "sleep 1000")
        #expect(rows[getpid()] == nil)
    }

    @Test func killByPIDEndsEveryProcessOfThatContainer() throws {
        let store = try Self.storeWithUniqueIDs()
        let id = try store.id(["build", "--from", "busybox"])
        let container = try Self.startContainer(store, image: id)
        var child: pid_t?
        defer { Self.end(container, [child]) }
        #expect(waitUntil { child = descendants(of: container.pid).first; return child != nil && commandLine(container.pid) == "sleep 1001" })
        let background = try #require(child)

        let killed = try store.plash(["kill", String(container.pid)])
        #expect(killed.status == 0, "\(killed)")
        #expect(waitUntil { !isAlive(container.pid) })
        #expect(container.wait().1 == SIGTERM)
        #expect(waitUntil { !isAlive(background) })
        let again = try store.plash(["kill", String(container.pid)])
        #expect(again.status == 1)
        #expect(again.stderr == "plash: kill \(container.pid): not a plash cgroup, the PID of a process in a container, or an image\n")
    }

    /// `..` once named the root cgroup: every process of the host. Tried only in a PID
    /// namespace of its own, where the test's own `sleep` is all there is to hit.
    @Test func killRefusesTargetsThatAreNoPlashCgroupContainerOrImage() throws {
        let store = try Self.storeWithUniqueIDs()
        _ = try store.id(["build", "--from", "busybox"])
        let script = """
            sleep 1000 & victim=$!
            for target in .. ../.. / ../x /sys/fs/cgroup . "" $victim; do
                "$0" kill "$target" KILL; echo "status $?"
            done
            kill -0 $victim && echo alive
            kill -9 $victim
            """
        let result = try run("/usr/bin/unshare", ["--pid", "--fork", "--mount-proc", "/bin/sh", "-c", script, plash],
                             environment: store.environment)
        #expect(result.stdout == String(repeating: "status 1\n", count: 8) + "alive\n", "\(result)")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 8 && lines.allSatisfy { $0.hasPrefix("plash: kill ") && $0.hasSuffix(" or an image") },
                "\(result)")
    }

    @Test func killByImageNameWithASignalEndsItsContainers() throws {
        let store = try Self.storeWithUniqueIDs()
        let id = try store.id(["build", "--from", "busybox", "--run", "touch /kill"])
        _ = try store.id(["map", "kill-demo", id])
        let first = try Self.startContainer(store, image: id)
        let second = try Self.startContainer(store, image: "kill-demo")
        var children: [pid_t?] = []
        defer { Self.end(first, children); Self.end(second, []) }
        #expect(waitUntil { [first, second].allSatisfy { commandLine($0.pid) == "sleep 1001" } })
        children = [first, second].flatMap { descendants(of: $0.pid) }

        let killed = try store.plash(["kill", "kill-demo", "-KILL"])
        #expect(killed.status == 0, "\(killed)")
        #expect(waitUntil { !isAlive(first.pid) && !isAlive(second.pid) })
        #expect(first.wait().1 == SIGKILL)
        #expect(second.wait().1 == SIGKILL)
        #expect(try Self.ps(store).1.values.allSatisfy { $0.0 != id })
    }
}
