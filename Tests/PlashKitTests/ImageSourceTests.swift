import Foundation
@testable import PlashKit
import PlashSystem
import PlashTestSupport
import Testing

/// The image sources' table (ImageSource.swift) and the one "make once" sequence of the
/// store (Store.makeOnce).
@Suite struct ImageSourceTests {
    struct Failed: Error {}

    @Test func everySourcesMacroAndCommandsComeFromTheTable() throws {
        let store = TestStore()
        let commands = try store.plash(["complete", "commands"]).stdout.split(separator: "\n").map(String.init)
        let macros = try store.plash(["complete", "macros"]).stdout.split(separator: "\n").map(String.init)
        let help = try store.plash(["help", "macros"]).stdout
        for kind in imageSources {
            if let macro = kind.macro {
                #expect(macros.contains(macro), "\(macro)")
                #expect(help.contains("  \(macro) \(kind.synopsis)"), "\(macro)")
            }
            for command in kind.commands {
                #expect(commands.contains(command.name), "\(command.name)")
                let usage = try store.plash([command.name, "--help"]).stdout
                #expect(usage.hasPrefix("Usage: plash \(command.name) \(kind.synopsis(of: command))\n"), "\(usage)")
                let options = try store.plash(["complete", "options", command.name]).stdout
                #expect(options.contains("--refresh") == (command.refresh == .optional), "\(command.name): \(options)")
            }
        }
    }

    @Test func evalNamesWhereEachSourcesImageComesFrom() throws {
        let store = TestStore()
        for (macro, argument, hint) in [("--from-oci", "./layout:t", "(OCI layout ./layout:t)"),
                                        ("--from-docker-archive", "a.tar", "(docker archive a.tar)"),
                                        ("--from-url", "http://127.0.0.1/r.tar", "http://127.0.0.1/r.tar"),
                                        ("--from-lxc", "alpine:3.23", "alpine:3.23"),
                                        ("--from-docker", "alpine", "(registry alpine)"),
                                        ("--from-debootstrap", "bookworm", "(mmdebstrap bookworm)")] {
            let result = try store.plash(["eval", macro, argument])
            #expect(result.status == 0 && result.stdout == "### plash hint: image=\(hint)\n", "\(macro): \(result)")
        }
    }

    /// The macro checks its arguments with the source's own parser as it is read: eval,
    /// which imports nothing, refuses what the import would.
    @Test func aSourceMacroRefusesWhatItsSourceCannotName() throws {
        let store = TestStore()
        let result = try store.plash(["eval", "--from-lxc", "../x"])
        #expect(result.status == 2 && result.stderr.hasPrefix("plash: --from-lxc ../x: not a NAME[:RELEASE]\n"), "\(result)")
        let command = try store.plash(["import-lxc", "../x"])
        #expect(command.status == 2 && command.stderr.hasPrefix("plash: import-lxc ../x: not a NAME[:RELEASE]\n"), "\(command)")
    }

    func newStore() throws -> Store {
        let store = Store(path: makeDirectory("once") + "/store")
        try store.create()
        return store
    }

    func publish(_ staging: Staging, _ store: Store, key: String) throws -> Store.Image {
        #expect(mkdir(staging.data, 0o755) == 0)
        return try store.publish(staging, parentNode: store.rootNode, script: "test", key: key)
    }

    @Test func aFailedMakeLeavesNoStagingNoImageAndNoCacheEntry() throws {
        let store = try newStore()
        #expect(throws: Failed.self) {
            try store.makeOnce("k") { staging in
                #expect(mkdir(staging.data, 0o755) == 0)
                throw Failed()
            }
        }
        #expect(store.cached("k") == nil && store.images().isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.tmp) == [])
    }

    @Test func aKeyIsMadeOnceAndAgainOnlyWhenRefreshed() throws {
        let store = try newStore()
        var made = 0
        let make = { (staging: Staging) throws -> Store.Image in
            made += 1
            return try publish(staging, store, key: "k")
        }
        let first = try store.makeOnce("k", make)
        #expect(try store.makeOnce("k", make) == first && made == 1)
        let again = try store.makeOnce("k", refresh: true, make)
        #expect(made == 2 && again != first && store.cached("k") == again)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.tmp) == [])
    }

    /// A download area (a pull's) is made in the staging too, and goes with it.
    @Test func whatAMakeLeavesInItsStagingIsRemoved() throws {
        let store = try newStore()
        let other = try store.makeOnce("base") { try publish($0, store, key: "base") }
        _ = try store.makeOnce("k") { staging in
            #expect(mkdir(staging.path + "/downloads", 0o700) == 0)
            return other
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.tmp) == [])
    }
}
