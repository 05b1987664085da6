import Foundation
import PlashTestSupport
import Testing

/// Image config end to end, with outside readers as the oracle: an application-like image
/// made by umoci (Entrypoint + Cmd + Env with a PATH addition + User + WorkingDir), served
/// by Debian's docker-registry, runs under plash as umoci's runtime config.json says;
/// what plash writes back, skopeo and podman read.
@Suite(.needs(.skopeo, .umoci, .podman)) struct ImageConfigTests {
    /// The application's start script prints what it was started with: its arguments,
    /// working directory, ids, and environment, one fact a line.
    static let startScript = """
        #!/bin/sh
        printf 'arg=%s\\n' "$0" "$@"
        echo "cwd=$(pwd)"
        echo "ids=$(id -u) $(id -g) $(id -G)"
        env | sort | sed 's/^/env=/'

        """

    static let umociConfig = [
        "--config.entrypoint", "/opt/app/bin/start", "--config.entrypoint", "--from-entrypoint",
        "--config.cmd", "serve", "--config.cmd", "--port=80",
        "--config.env", "PATH=/opt/app/bin:/usr/bin:/bin", "--config.env", "GREETING=hello world",
        "--config.user", "app", "--config.workingdir", "/srv/app", "--config.label", "org.example.name=app",
        "--config.exposedports", "8080/tcp", "--config.volume", "/data", "--config.stopsignal", "SIGQUIT",
        "--author", "Ann Author", "--created", "2024-05-06T07:08:09Z", "--history.created_by", "made by umoci",
    ]

    /// An OCI layout (tag t) of busybox, a user `app` (1000, also in group `extra`), and
    /// the start script, with the config above; made by umoci.
    static func applicationLayout(_ dir: String) throws -> String {
        let root = try makeBusyboxRoot(at: dir + "/root")
        try "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
            .write(toFile: root + "/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\napp:x:1000:\nextra:x:2000:app\n".write(toFile: root + "/etc/group", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: root + "/opt/app/bin", withIntermediateDirectories: true)
        try writeExecutable(root + "/opt/app/bin/start", startScript)
        let made = try shell("""
            set -e; cd '\(dir)'; umoci init --layout app; umoci new --image app:t; umoci unpack --image app:t bundle >/dev/null
            cp -a root/. bundle/rootfs/; umoci repack --image app:t bundle; rm -rf bundle
            umoci config --image app:t \(umociConfig.map { "'\($0)'" }.joined(separator: " "))
            """)
        guard made.status == 0 else { throw StoreTestError("umoci: \(made)") }
        return dir + "/app"
    }

    /// What umoci's runtime config.json says the process is: its lines in the start
    /// script's words (TERM is umoci's default, xterm; the test gives plash the same).
    static func umociRuntime(_ layout: String, _ dir: String) throws -> [String] {
        let unpacked = try run("/usr/bin/umoci", ["unpack", "--image", layout + ":t", dir + "/bundle"])
        guard unpacked.status == 0 else { throw StoreTestError("umoci unpack: \(unpacked)") }
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/bundle/config.json"))
        let process = try #require((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["process"] as? [String: Any])
        let user = try #require(process["user"] as? [String: Any])
        let uid = user["uid"] as! Int, gid = user["gid"] as! Int
        let groups = Set([gid] + (user["additionalGids"] as? [Int] ?? [])).sorted()
        return (process["args"] as! [String]).map { "arg=" + $0 } + ["cwd=" + (process["cwd"] as! String),
                                                                   "ids=\(uid) \(gid) " + groups.map(String.init).joined(separator: " ")]
            + (process["env"] as! [String]).sorted().map { "env=" + $0 }
    }

    /// What the start script printed, without what the shell itself exports (PWD, SHLVL).
    static func reported(_ output: String) -> [String] {
        output.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("env=PWD=") && !$0.hasPrefix("env=SHLVL=") }
    }

    @Test func anApplicationImageRunsAsUmocisRuntimeConfigSaysAsRoot() throws {
        let dir = makeDirectory("app")
        let layout = try Self.applicationLayout(dir)
        let registry = try RegistryServer()
        defer { registry.stop() }
        try registry.push(layout, tag: "t", as: "app/server:1")
        let store = TestStore()
        let id = try store.id(["import-docker", registry.host + "/app/server:1"])
        let ran = try store.plash(["run", id], environment: ["TERM": "xterm"])
        #expect(ran.status == 0, "\(ran)")
        #expect(Self.reported(ran.stdout) == (try Self.umociRuntime(layout, dir)), "\(ran)")
        // plash-exec, the shim alone, applies the same config.
        let shim = try run(plashExec, [id], environment: store.environment.merging(["TERM": "xterm"]) { $1 })
        #expect(Self.reported(shim.stdout) == Self.reported(ran.stdout), "\(shim)")
    }

    @Test func anApplicationImageRunsAsUmocisRuntimeConfigSaysAsAnOrdinaryUser() throws {
        let user = try userWithSubordinateIDs
        let dir = makeDirectory("app-user")
        let layout = try Self.applicationLayout(dir)
        let registry = try RegistryServer()
        defer { registry.stop() }
        try registry.push(layout, tag: "t", as: "app/server:1")
        let cwd = makeDirectory("app-user-cwd", ownedBy: user)
        let data = cwd + "/store"
        defer { _ = try? user.run(userPlash, ["purge", "--yes"], environment: ["PLASH_DATA": data], directory: cwd) }
        let environment = ["PLASH_DATA": data, "TERM": "xterm"]
        let pulled = try user.run(userPlash, ["import-docker", registry.host + "/app/server:1"], environment: environment, directory: cwd)
        #expect(pulled.status == 0, "\(pulled)")
        let id = pulled.stdout.trimmingCharacters(in: .newlines)
        let ran = try user.run(userPlash, ["run", id], environment: environment, directory: cwd)
        #expect(ran.status == 0, "\(ran)")
        #expect(Self.reported(ran.stdout) == (try Self.umociRuntime(layout, dir)), "\(ran)")
    }

    /// The application image imported from its layout into a fresh store: the store and
    /// the id.
    static func importedApplication() throws -> (TestStore, String) {
        let store = TestStore()
        let id = try store.id(["import-oci", try applicationLayout(makeDirectory("app")) + ":t"])
        return (store, id)
    }

    /// The lines of the start script's report that start with `prefix`.
    static func lines(_ output: String, _ prefix: String) -> [String] {
        output.split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) }
    }

    @Test func aCommandReplacesCmdAndKeepsTheEntrypoint() throws {
        let (store, id) = try Self.importedApplication()
        let ran = try store.plash(["run", id, "--", "status", "--verbose"])
        #expect(Self.lines(ran.stdout, "arg=") == ["arg=/opt/app/bin/start", "arg=--from-entrypoint", "arg=status", "arg=--verbose"],
                "\(ran)")
    }

    @Test func entrypointReplacesTheImagesEntrypointAndItsCmd() throws {
        let (store, id) = try Self.importedApplication()
        let replaced = try store.plash(["run", "--entrypoint", "/bin/echo", id])
        #expect(replaced.stdout == "\n", "\(replaced)")
        let cleared = try store.plash(["run", "--entrypoint", "", id, "--", "echo", "alone"])
        #expect(cleared.stdout == "alone\n", "\(cleared)")
    }

    @Test func theCallersOptionsWinOverTheImagesEnvUserAndWorkingDir() throws {
        let (store, id) = try Self.importedApplication()
        let ran = try store.plash(["run", "--env", "GREETING=mine", "--user", "0", "--cwd", "/", id])
        #expect(ran.status == 0, "\(ran)")
        #expect(Self.lines(ran.stdout, "env=GREETING=") == ["env=GREETING=mine"], "\(ran)")
        #expect(Self.lines(ran.stdout, "ids=") == ["ids=0 0 0"], "\(ran)")
        #expect(Self.lines(ran.stdout, "cwd=") == ["cwd=/"], "\(ran)")
        // The image's PATH stays: the program is found through it.
        #expect(try store.plash(["run", "--entrypoint", "", id, "--", "start"]).stdout.contains("arg=/opt/app/bin/start"))
    }

    @Test func theImagesWorkingDirIsMadeWhenTheImageLacksIt() throws {
        let (store, id) = try Self.importedApplication()
        let nodes = try store.nodes
        let ran = try store.plash(["run", "--entrypoint", "", id, "--", "pwd"])
        #expect(ran.stdout == "/srv/app\n", "\(ran)")
        #expect(try store.nodes == nodes)
        #expect(!FileManager.default.fileExists(atPath: try store.plash(["nodepath", id]).stdout
            .trimmingCharacters(in: .newlines) + "/_data/srv/app"))
    }

    @Test func aWorkingDirInASharedHostDirectoryIsNeverMadeOnTheHost() throws {
        let store = TestStore()
        let hostDir = "/tmp/plash-workdir-\(UUID().uuidString)"
        let id = try store.id(["build", "--from", "busybox", "--config-workdir", hostDir + "/app"])
        let ran = try store.plash(["run", id, "--", "pwd"])
        #expect(ran.status == 125, "\(ran)")
        #expect(ran.stderr.hasPrefix("plash: the image's WorkingDir \(hostDir)/app: /tmp is the host's (shared)"), "\(ran)")
        #expect(!FileManager.default.fileExists(atPath: hostDir))
        // Not shared, /tmp is the container's own: there it is made.
        #expect(try store.plash(["run", "--no-tmp", id, "--", "pwd"]).stdout == hostDir + "/app\n")
        #expect(!FileManager.default.fileExists(atPath: hostDir))
    }

    @Test func anImageWithoutConfigKeepsPlashsDefaults() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "true"])
        let dir = makeDirectory("caller")
        let ran = try store.plash(["run", id], stdin: "pwd; id -u; echo $PATH\n", directory: dir)
        #expect(ran.stdout == "\(dir)\n0\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n", "\(ran)")
    }

    @Test func aBuildStepRunsWithTheParentsEnvButNotThroughItsEntrypoint() throws {
        let (store, id) = try Self.importedApplication()
        let built = try store.id(["build", "--from", id, "--config-user", "root", "--layer",
                                  "--run", "echo \"$GREETING\" > /step && pwd >> /step && id -u >> /step"])
        #expect(try store.plash(["run", "--entrypoint", "", built, "--", "cat", "/step"]).stdout == "hello world\n/srv/app\n0\n")
    }

    @Test func configMacrosSetTheConfigAndTheRestIsInherited() throws {
        let (store, id) = try Self.importedApplication()
        let built = try store.id(["build", "--from", id, "--config-env", "PATH=/extra:$PATH", "MODE=test",
                                  "--config-cmd", "[\"run\", \"--fast\"]", "--config-workdir", "/tmp"])
        let ran = try store.plash(["run", built])
        #expect(Self.lines(ran.stdout, "arg=") == ["arg=/opt/app/bin/start", "arg=--from-entrypoint", "arg=run", "arg=--fast"],
                "\(ran)")
        #expect(Self.lines(ran.stdout, "env=PATH=") == ["env=PATH=/extra:/opt/app/bin:/usr/bin:/bin"])
        #expect(Self.lines(ran.stdout, "env=MODE=") == ["env=MODE=test"])
        #expect(Self.lines(ran.stdout, "cwd=") == ["cwd=/tmp"])
        #expect(Self.lines(ran.stdout, "ids=") == ["ids=1000 1000 1000 2000"])
        // An image built on it with a step only keeps all of it.
        let above = try store.id(["build", "--from", built, "--config-user", "root", "--layer", "--run", "true"])
        #expect(try store.plash(["run", above]).stdout.contains("arg=--fast"))
    }

    @Test func aConfigMacroIsPartOfTheCacheKey() throws {
        let store = TestStore()
        let one = try store.id(["build", "--from", "busybox", "--config-env", "A=1"])
        let two = try store.id(["build", "--from", "busybox", "--config-env", "A=2"])
        #expect(one != two)
        #expect(try store.plash(["run", two, "--", "sh", "-c", "echo $A"]).stdout == "2\n")
        #expect(try store.id(["build", "--from", "busybox", "--config-env", "A=1"]) == one)
    }

    @Test func theSameLayersUnderAnotherConfigAreAnImageOfTheirOwn() throws {
        let dir = makeDirectory("two-configs")
        let layout = try Self.applicationLayout(dir)
        let changed = try run("/usr/bin/umoci", ["config", "--image", layout + ":t", "--tag", "u", "--config.cmd", "other"])
        #expect(changed.status == 0, "\(changed)")
        let store = TestStore()
        let first = try store.id(["import-oci", layout + ":t"])
        let second = try store.id(["import-oci", layout + ":u"])
        #expect(first != second)
        #expect(Self.lines(try store.plash(["run", first]).stdout, "arg=").last == "arg=--port=80")
        #expect(Self.lines(try store.plash(["run", second]).stdout, "arg=").last == "arg=other")
        // Imported again, each is found as it is.
        #expect(try store.id(["import-oci", layout + ":t"]) == first)
    }

    @Test func aBaseImportedAfterAnImageOnItSharesItsLayersAndKeepsItsOwnConfig() throws {
        let dir = makeDirectory("order")
        let layout = try Self.applicationLayout(dir)
        let made = try shell("""
            set -e; cd '\(dir)'; umoci unpack --image app:t upper >/dev/null; echo up > upper/rootfs/up
            umoci repack --image app:u upper; umoci config --image app:u --config.cmd upper
            """)
        #expect(made.status == 0, "\(made)")
        let store = TestStore()
        let upper = try store.id(["import-oci", layout + ":u"])
        let base = try store.id(["import-oci", layout + ":t"])
        let layer = try store.id(["parent", upper])
        #expect(try store.id(["parent", base]) == layer)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.id(["nodepath", base]) + "/_data").isEmpty)
        #expect(Self.lines(try store.plash(["run", base]).stdout, "arg=").last == "arg=--port=80")
        #expect(Self.lines(try store.plash(["run", upper]).stdout, "arg=").last == "arg=upper")
        // Its export has the source's layers and no more.
        let out = makeDirectory("order-out")
        #expect(try store.plash(["export-oci", base, out + "/layout"]).status == 0)
        #expect(try Self.skopeoConfig("oci:\(out)/layout:latest")["history"] == (try Self.skopeoConfig("oci:\(layout):t")["history"]))
        let layers = try shell("skopeo inspect oci:'\(out)/layout':latest | grep -c sha256: ; skopeo inspect oci:'\(layout)':t | grep -c sha256:")
        let counts = layers.stdout.split(separator: "\n")
        #expect(counts.count == 2 && counts[0] == counts[1], "\(layers)")
    }

    @Test func badConfigMacroArgumentsAreUsageErrors() throws {
        let store = TestStore()
        for macro in [["--config-env", "NOVALUE"], ["--config-workdir", "relative"], ["--config-expose", "http"],
                      ["--config-stop-signal", "NOSUCH"], ["--config-cmd", "[\"unclosed\""], ["--config-user", ":0"]] {
            let result = try store.plash(["build", "--from", "busybox"] + macro)
            #expect(result.status == 2, "\(macro): \(result)")
            #expect(result.stderr.hasPrefix("plash: \(macro[0]) "), "\(macro): \(result)")
            #expect(store.indexedIDs.isEmpty, "\(macro)")
        }
    }

    @Test func aStoredConfigThatIsNoRegularFileStopsTheStartWithOneLine() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--config-cmd", "true"])
        let node = try store.plash(["nodepath", id]).stdout.trimmingCharacters(in: .newlines)
        unlink(node + "/_config.exec")
        #expect(mkfifo(node + "/_config.exec", 0o644) == 0)
        let (result, ended) = try runWithDeadline(plashExec, [id], environment: store.environment, seconds: 10)
        #expect(ended)
        #expect(result.status == 125, "\(result)")
        #expect(result.stderr.hasPrefix("plash-exec: image config \(node)/_config.exec: "), "\(result)")
    }

    @Test func aStoredConfigJSONThatIsNoRegularFileFailsInspectWithOneLine() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--config-cmd", "true"])
        let node = try store.plash(["nodepath", id]).stdout.trimmingCharacters(in: .newlines)
        unlink(node + "/_config.json")
        #expect(mkfifo(node + "/_config.json", 0o644) == 0)
        let (result, ended) = try runWithDeadline(plash, ["inspect", id], environment: store.environment, seconds: 10)
        #expect(ended)
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr == "plash: image config \(node)/_config.json: not a regular file\n", "\(result)")
    }

    @Test func aDockerArchiveKeepsItsConfigThroughExportAndImport() throws {
        let (store, id) = try Self.importedApplication()
        let archive = makeDirectory("archive") + "/app.tar"
        #expect(try store.plash(["export-docker-archive", id, archive]).status == 0)
        let other = TestStore()
        let imported = try other.id(["import-docker-archive", archive])
        #expect(try other.plash(["inspect", imported, "--json"]).stdout.replacingOccurrences(of: "\"Id\" : \"\(imported)\"", with: "")
                == (try store.plash(["inspect", id, "--json"]).stdout.replacingOccurrences(of: "\"Id\" : \"\(id)\"", with: "")))
        let ran = try other.plash(["run", imported, "--", "one"])
        #expect(Self.lines(ran.stdout, "arg=") == ["arg=/opt/app/bin/start", "arg=--from-entrypoint", "arg=one"], "\(ran)")
    }

    @Test func inspectShowsTheConfigAsPodmanImageInspectDoes() throws {
        let (store, id) = try Self.importedApplication()
        let shown = try store.plash(["inspect", id, "--json"])
        #expect(shown.status == 0, "\(shown)")
        let objects = try #require(try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [[String: Any]])
        let object = try #require(objects.first)
        #expect(object["Id"] as? String == id)
        #expect(object["Author"] as? String == "Ann Author")
        #expect(object["Created"] as? String == "2024-05-06T07:08:09Z")
        let config = try #require(object["Config"] as? [String: Any])
        #expect(config["Entrypoint"] as? [String] == ["/opt/app/bin/start", "--from-entrypoint"])
        #expect(config["Cmd"] as? [String] == ["serve", "--port=80"])
        #expect(config["User"] as? String == "app")
        #expect(config["WorkingDir"] as? String == "/srv/app")
        #expect(config["StopSignal"] as? String == "SIGQUIT")
        #expect((config["ExposedPorts"] as? [String: Any])?.keys.sorted() == ["8080/tcp"])
        #expect((config["Volumes"] as? [String: Any])?.keys.sorted() == ["/data"])
        #expect((object["Labels"] as? [String: String]) == ["org.example.name": "app"])
        #expect((object["History"] as? [[String: Any]])?.compactMap { $0["created_by"] as? String }.contains("made by umoci") == true)
        let text = try store.plash(["inspect", id])
        #expect(text.stdout.contains("User        app\n"), "\(text)")
    }

    /// skopeo's view of a config: the fields the issue names, from `skopeo inspect --config`.
    static func skopeoConfig(_ image: String) throws -> [String: String] {
        let shown = try run("/usr/bin/skopeo", ["inspect", "--config", "--tls-verify=false", image])
        guard shown.status == 0 else { throw StoreTestError("skopeo inspect: \(shown)") }
        let object = try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as! [String: Any]
        var fields: [String: String] = [:]
        let config = object["config"] as? [String: Any] ?? [:]
        for key in ["Env", "Entrypoint", "Cmd", "User", "WorkingDir", "Labels", "ExposedPorts", "Volumes", "StopSignal"] {
            if let value = config[key] {
                fields[key] = String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes]),
                                     as: UTF8.self)
            }
        }
        fields["author"] = object["author"] as? String
        fields["created"] = object["created"] as? String
        let history = (object["history"] as? [[String: Any]] ?? []).map { ($0["created_by"] as? String) ?? "" }
        fields["history"] = history.joined(separator: "|")
        return fields
    }

    @Test func aPullAndAPushBackKeepEveryConfigField() throws {
        let dir = makeDirectory("roundtrip")
        let layout = try Self.applicationLayout(dir)
        let registry = try RegistryServer()
        defer { registry.stop() }
        try registry.push(layout, tag: "t", as: "app/server:1")
        let store = TestStore()
        let id = try store.id(["import-docker", registry.host + "/app/server:1"])
        let pushed = try store.plash(["push", id, registry.host + "/app/copy:1"])
        #expect(pushed.status == 0, "\(pushed)")
        let original = try Self.skopeoConfig("docker://\(registry.host)/app/server:1")
        #expect(original["User"] == "\"app\"")
        #expect(try Self.skopeoConfig("docker://\(registry.host)/app/copy:1") == original)
    }

    @Test func configMacrosAreWrittenByPushAndExportWithAHistoryEntryPerLayer() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "echo hi > /hi", "--layer",
                               "--config-env", "PATH=/app:$PATH", "--config-entrypoint", "/bin/echo", "--config-cmd", "hello",
                               "--config-user", "root", "--config-workdir", "/app", "--config-label", "a=b",
                               "--config-expose", "80", "--config-volume", "/data", "--config-stop-signal", "INT"])
        let registry = try RegistryServer()
        defer { registry.stop() }
        let pushed = try store.plash(["push", id, registry.host + "/built/app:1"])
        #expect(pushed.status == 0, "\(pushed)")
        let fields = try Self.skopeoConfig("docker://\(registry.host)/built/app:1")
        #expect(fields["Env"] == "[\"PATH=/app:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"]", "\(fields)")
        #expect(fields["Entrypoint"] == "[\"/bin/echo\"]", "\(fields)")
        #expect(fields["WorkingDir"] == "\"/app\"", "\(fields)")
        #expect(fields["Volumes"] == "{\"/data\":{}}", "\(fields)")
        #expect(fields["Cmd"] == "[\"hello\"]")
        #expect(fields["User"] == "\"root\"")
        #expect(fields["Labels"] == "{\"a\":\"b\"}")
        #expect(fields["ExposedPorts"] == "{\"80/tcp\":{}}", "\(fields)")
        #expect(fields["StopSignal"] == "\"SIGINT\"")
        let history = try #require(fields["history"]).split(separator: "|", omittingEmptySubsequences: false)
        #expect(history.count == 3, "\(fields)")
        #expect(history.first == "import busybox")
        #expect(history.dropFirst().first == "echo hi > /hi")
        #expect(history.last?.hasPrefix("--config-env 'PATH=/app:$PATH'") == true, "\(fields)")
        // A real time, not 1970.
        #expect(fields["created"]?.hasPrefix("1970") == false, "\(fields)")
    }

    @Test func sourceDateEpochMakesExportsOfARebuiltImageTheSame() throws {
        let store = TestStore()
        let epoch = ["SOURCE_DATE_EPOCH": "1700000000"]
        var digests: [String] = []
        for _ in 0..<2 {
            let id = try store.id(["build", "--from", "busybox", "--config-cmd", "true", "--invalidate-layer"])
            let dir = makeDirectory("epoch")
            let exported = try store.plash(["export-oci", id, dir + "/layout"], environment: epoch)
            #expect(exported.status == 0, "\(exported)")
            digests.append(try String(contentsOfFile: dir + "/layout/index.json", encoding: .utf8))
            let config = try Self.skopeoConfig("oci:\(dir)/layout:latest")
            #expect(config["created"] == "2023-11-14T22:13:20Z", "\(config)")
            sleep(1)
        }
        #expect(digests[0] == digests[1])
        let bad = try store.plash(["export-oci", "1", makeDirectory("bad") + "/layout"], environment: ["SOURCE_DATE_EPOCH": "soon"])
        #expect(bad.status == 1 && bad.stderr.contains("SOURCE_DATE_EPOCH=soon"), "\(bad)")
    }

    @Test func podmanLoadsAnExportWithTheSameConfig() throws {
        let (store, imported) = try Self.importedApplication()
        // What plash's own config macros add shows too.
        let id = try store.id(["build", "--from", imported, "--config-env", "EXTRA=1", "--config-label", "built=yes",
                               "--config-expose", "9000"])
        let dir = makeDirectory("podman")
        let exported = try store.plash(["export-docker-archive", id, dir + "/app.tar", "--tag", "localhost/app:1"])
        #expect(exported.status == 0, "\(exported)")
        // A storage of its own, below the test's directory: nothing of the host's podman.
        // Its runroot has room for 50 characters at most, wherever the checkout lies.
        let runroot = try shell("mktemp -d /tmp/plash-podman.XXXXXX").stdout.trimmingCharacters(in: .newlines)
        defer { _ = try? shell("rm -rf '\(runroot)'") }
        let podman = ["--root", dir + "/storage", "--runroot", runroot, "--storage-driver", "vfs"]
        let loaded = try run("/usr/bin/podman", podman + ["load", "-q", "-i", dir + "/app.tar"])
        #expect(loaded.status == 0, "\(loaded)")
        defer { _ = try? run("/usr/bin/podman", podman + ["rmi", "-a", "-f"]) }
        let shown = try run("/usr/bin/podman", podman + ["image", "inspect", "localhost/app:1"])
        #expect(shown.status == 0, "\(shown)")
        let object = try #require((try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [[String: Any]])?.first)
        let config = try #require(object["Config"] as? [String: Any])
        #expect(config["Entrypoint"] as? [String] == ["/opt/app/bin/start", "--from-entrypoint"])
        #expect(config["Cmd"] as? [String] == ["serve", "--port=80"])
        #expect(config["Env"] as? [String] == ["PATH=/opt/app/bin:/usr/bin:/bin", "GREETING=hello world", "EXTRA=1"])
        #expect(config["User"] as? String == "app")
        #expect(config["WorkingDir"] as? String == "/srv/app")
        #expect(config["StopSignal"] as? String == "SIGQUIT")
        #expect(config["Labels"] as? [String: String] == ["org.example.name": "app", "built": "yes"])
        #expect((config["ExposedPorts"] as? [String: Any])?.keys.sorted() == ["8080/tcp", "9000/tcp"])
        #expect((config["Volumes"] as? [String: Any])?.keys.sorted() == ["/data"])
        #expect(object["Author"] as? String == "Ann Author")
    }
}
