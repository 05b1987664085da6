import Foundation
import PlashKit
import PlashSystem
import PlashTestSupport
import Testing

/// The image sources' table (ImageSource.swift) behind the macros, the commands, eval and
/// completion; and the one reference grammar's refusals, as the commands say them.
@Suite struct ImageSourceTests {
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

    @Test func aReferenceLongerThanDockerAllowsIsAUsageErrorAndStoresNothing() throws {
        let store = TestStore()
        let long = "localhost:5000/" + String(repeating: "a", count: 241)   // 256 bytes
        let result = try store.plash(["pull", long])
        #expect(result.status == 2 && result.stderr.hasPrefix("plash: pull: \(long): not a registry reference"), "\(result)")
        #expect(!FileManager.default.fileExists(atPath: store.data + "/index"))
    }

    @Test func aRegistryHostThatIsNoHostNameIsAUsageError() throws {
        let store = TestStore()
        let result = try store.plash(["build", "--from-docker", "bad_host.example/a"])
        #expect(result.status == 2 && result.stderr.hasPrefix("plash: --from-docker: bad_host.example/a: not a registry reference"),
                "\(result)")
    }
}
