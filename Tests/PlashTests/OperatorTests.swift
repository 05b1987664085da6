import Foundation
import PlashTestSupport
import Testing

/// What operators and scripts rely on: finding plash-exec, --help, JSON listings, du.
@Suite struct OperatorTests {
    /// plash (the front and the builder) copied into a directory of their own.
    func lonePlash() throws -> String {
        let dir = makeDirectory("lone")
        try copyPlash(to: dir)
        return dir + "/plash"
    }

    @Test func aPlashCopiedAloneSaysInOneLineThatPlashExecIsMissing() throws {
        let store = TestStore()
        let lone = try lonePlash()
        let result = try run(lone, ["build", "--from", "busybox", "--run", "true"],
                             environment: store.environment.merging(["PATH": "/usr/bin:/bin"]) { $1 })
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr == "plash: plash-exec not found beside \(lone)-builder nor on PATH "
                + "(install plash's programs together with scripts/install, or put plash-exec on PATH)\n", "\(result)")
        #expect(store.indexedIDs.isEmpty, "\(result)")
    }

    @Test func aPlashCopiedAloneUsesThePlashExecOnPath() throws {
        let store = TestStore()
        let result = try run(try lonePlash(), ["build", "--from", "busybox", "--run", "echo built > /b"],
                             environment: store.environment.merging(["PATH": productsDirectory.path + ":/usr/bin:/bin"]) { $1 })
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "2\n", "\(result)")
    }

    /// The front alone: every command but a run of a stored image is plash-builder's.
    @Test func aFrontWithoutItsBuilderSaysInOneLineThatItIsMissing() throws {
        let store = TestStore()
        let id = try store.id(["import", "busybox"])
        let dir = makeDirectory("front")
        try copyExecutable(plash, to: dir + "/plash")
        let environment = store.environment.merging(["PATH": "/usr/bin:/bin"]) { $1 }
        for arguments in [["ls"], ["run", "--from", "busybox", "--", "true"], ["run", "nosuchimage"]] {
            let result = try run(dir + "/plash", arguments, environment: environment)
            #expect(result.status == 1, "\(arguments): \(result)")
            #expect(result.stderr == "plash: plash-builder not found beside \(dir)/plash nor on PATH (install plash's "
                    + "programs together with scripts/install, or put plash-builder on PATH)\n", "\(arguments): \(result)")
        }
        // What it runs itself needs no builder.
        let ran = try run(dir + "/plash", ["run", id, "--", "echo", "ran"], environment: environment)
        #expect(ran.status == 0 && ran.stdout == "ran\n", "\(ran)")
        // And a builder on PATH answers the rest.
        let listed = try run(dir + "/plash", ["ls"], environment: environment.merging(["PATH": productsDirectory.path + ":/usr/bin:/bin"]) { $1 })
        #expect(listed.status == 0 && listed.stdout.contains(id), "\(listed)")
    }

    @Test func everyCommandHasHelpThatListsItsOptions() throws {
        let store = TestStore()
        let names = try store.plash(["complete", "commands"]).stdout.split(separator: "\n").map(String.init)
        #expect(names.count > 20)
        for name in names {
            let result = try store.plash([name, "--help"])
            #expect(result.status == 0, "\(name): \(result)")
            #expect(result.stdout.hasPrefix("Usage: plash \(name) ") || result.stdout.hasPrefix("Usage: plash \(name)\n"),
                    "\(name): \(result)")
            #expect(result.stdout.contains("\nOptions:\n"), "\(name): \(result)")
            #expect(result.stdout.contains("  -h, --help "), "\(name): \(result)")
        }
        #expect(try store.plash(["ls", "--help"]).stdout.contains("  --json "))
        #expect(try store.plash(["purge", "-h"]).stdout.contains("  -y, --yes "))
    }

    /// The help lines say what docs/ says: --from resolves names on the image server,
    /// export-oci's imported layers leave as they came, import-docker-archive takes the
    /// first image, and plash-exec runs old Plashfiles.
    @Test func helpLinesSayWhatTheDocsSay() throws {
        let store = TestStore()
        let macros = try store.plash(["help", "macros"]).stdout
        // The row, with the lines its help wraps onto.
        let row = macros.components(separatedBy: "\n  --from, -f, --image")[1].components(separatedBy: "\n  -")[0]
        #expect(row.split(whereSeparator: \.isWhitespace).joined(separator: " ").contains("image server"), "\(macros)")
        let help = try store.plash(["help"]).stdout
        #expect(help.contains("imported ones as they came"), "\(help)")
        #expect(help.contains("the first image of a docker archive"), "\(help)")
        let exec = try run(plashExec, ["--help"])
        #expect(exec.stdout.contains("plash-exec ./Plashfile [ARG...]"), "\(exec)")
    }

    /// The texts of a command's option rows start in one column, -h's included.
    @Test func everyCommandsOptionsLineUp() throws {
        let store = TestStore()
        for name in try store.plash(["complete", "commands"]).stdout.split(separator: "\n").map(String.init) where name != "run" {
            let help = try store.plash([name, "--help"]).stdout
            let rows = help.components(separatedBy: "\nOptions:\n")[1].split(separator: "\n").filter { $0.hasPrefix("  ") }
            let columns = Set(rows.compactMap { row in row.range(of: "   ").map { row[$0.upperBound...].prefix { $0 == " " }.count + row.distance(from: row.startIndex, to: $0.upperBound) } })
            #expect(columns.count == 1, "\(name): \(help)")
        }
    }

    @Test func runHelpListsTheExecOptionsItPassesOn() throws {
        let result = try TestStore().plash(["run", "--help"])
        #expect(result.status == 0)
        for option in ["--bind SRC", "--ro-bind", "--env NAME", "--memory SIZE", "--pids N", "--cpus", "--cgroup NAME",
                       "--seccomp PROFILE", "--pid-ns", "--net none", "--persist DIR", "--no-new-privs"] {
            #expect(result.stdout.contains("  \(option)"), "\(option)")
        }
        // Not the image options: plash run names the image itself.
        #expect(!result.stdout.contains("--root") && !result.stdout.contains("--lower"), "\(result)")
    }

    func jsonArray(_ text: String) throws -> [[String: Any]] {
        let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try #require(parsed as? [[String: Any]], "not an array of objects: \(text)")
    }

    @Test func lsJSONHasTheDocumentedFields() throws {
        let store = TestStore()
        #expect(try jsonArray(store.plash(["ls", "--json"]).stdout).isEmpty)
        let id = try store.id(["build", "--from", "busybox", "--run", "echo 12345 > /x"])
        #expect(try store.plash(["map", "ex", id]).status == 0)
        let images = try jsonArray(store.plash(["ls", "--json"]).stdout)
        #expect(images.count == 2)
        #expect(Set(images[1].keys) == ["id", "parent", "names", "size", "age", "script"])
        #expect(images[1]["id"] as? Int == 2)
        #expect(images[1]["parent"] as? Int == 1)
        #expect(images[1]["names"] as? [String] == ["ex"])
        #expect((images[1]["size"] as? Int ?? 0) > 0)
        #expect(images[1]["age"] is Int)
        #expect(images[1]["script"] as? String == "echo 12345 > /x")
    }

    @Test func psJSONHasTheDocumentedFields() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox"])
        #expect(try store.plash(["map", "box", id]).status == 0)
        let container = try Child(plash, ["run", "box", "--", "sleep", "1000"], environment: store.environment)
        defer { kill(container.pid, SIGKILL); _ = container.finish() }
        var mine: [String: Any]? = nil
        waitUntil {
            let processes = (try? jsonArray(store.plash(["ps", "--json"]).stdout)) ?? []
            mine = processes.first { $0["pid"] as? Int == Int(container.pid) }
            // plash shows in the container's mounts a moment before it execs sleep.
            return mine?["command"] as? String == "sleep 1000"
        }
        let process = try #require(mine, "plash ps --json does not list \(container.pid)")
        #expect(Set(process.keys) == ["pid", "image", "store", "name", "command"])
        #expect(process["image"] as? String == id)
        #expect(process["store"] as? String == store.data)
        #expect(process["name"] as? String == "box")
        #expect(process["command"] as? String == "sleep 1000")
    }

    @Test func duShowsSharedAndUniqueSpaceAndWhatCleanFrees() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox", "--run", "head -c 300000 /dev/zero > /big"])
        let result = try store.plash(["du"])
        #expect(result.status == 0, "\(result)")
        let lines = result.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(lines.count == 4, "\(result)")
        #expect(lines[0] == ["ID", "LAYER", "TOTAL", "SHARED", "UNIQUE", "RM-FREES"])
        #expect(lines[1][0] == "1" && lines[1][4] == "0B", "the base is shared by image 2: \(result)")
        #expect(lines[2][0] == "2" && lines[2][1] == lines[2][4], "image 2's layer is its own: \(result)")
        #expect(lines[3].first == "2" && lines[3].contains("clean") && lines[3].last == "0B", "\(result)")
    }

    @Test func completeListsCommandsMacrosImagesAndOptions() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox"])
        #expect(try store.plash(["map", "box", id]).status == 0)
        func words(_ arguments: [String]) throws -> [String] {
            try store.plash(["complete"] + arguments).stdout.split(separator: "\n").map(String.init)
        }
        #expect(try words(["commands"]).contains("doctor"))
        #expect(try words(["macros"]).contains("--apt"))
        #expect(try words(["images"]) == ["1", "box"])
        #expect(try words(["options", "run"]).contains("--memory"))
        #expect(try !words(["options", "run"]).contains("--root"))
        #expect(try words(["options", "ps"]) == ["--json", "--help"])
    }
}
