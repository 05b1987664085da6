import Foundation
import PlashTestSupport
import Testing

/// `plash run` and what a build sees.
@Suite struct RunTests {
    @Test func runPassesTheExitStatusThrough() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        #expect(try store.plash(["run", "1", "--", "sh", "-c", "exit 7"]).status == 7)
        #expect(try store.plash(["run", "1", "sh", "-c", "exit 3"]).status == 3)
    }

    @Test func runOfAnUnknownCommandExits127() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        #expect(try store.plash(["run", "1", "--", "no-such-command"]).status == 127)
    }

    @Test func aScriptWithoutAShebangLineRunsWithBinShAsExecvpRunsIt() throws {
        let store = TestStore()
        let result = try store.plash(["run", "--from", "busybox", "--write-script", "/bin/hi", "echo hi from $0 $1",
                                      "--", "hi", "there"])
        #expect(result.status == 0 && result.stdout == "hi from /bin/hi there\n", "\(result)")
    }

    @Test func runPassesVariablesNamedInPlashExport() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        let result = try store.plash(["run", "1", "--", "sh", "-c", "echo $A-$B"],
                                     environment: ["A": "one", "B": "two", "PLASH_EXPORT": "A"])
        #expect(result.stdout == "one-\n")
    }

    @Test func aBuildStepGetsNoneOfTheServiceManagersVariablesButThePlashRunProgramDoes() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        // A build inside a systemd unit: the step is not the service, which must report
        // ready itself and take the sockets meant for it.
        let manager = ["NOTIFY_SOCKET": "@plash-test-none", "LISTEN_FDS": "1", "LISTEN_PID": "1", "WATCHDOG_USEC": "5"]
        let show = "echo [$NOTIFY_SOCKET$LISTEN_FDS$LISTEN_PID$WATCHDOG_USEC]"
        let built = try store.plash(["run", "--from-id", "1", "--run", show + " >/seen", "--", "sh", "-c", "cat /seen; " + show],
                                    environment: manager)
        #expect(built.stdout == "[]\n[@plash-test-none115]\n", "\(built)")
    }

    @Test func runWithoutACommandRunsAShellReadingStdin() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        #expect(try store.plash(["run", "1"], stdin: "echo from-stdin\n").stdout == "from-stdin\n")
    }

    @Test func runPassesTheOperatorOptionsOnAndRefusesThemAfterTheImage() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        let web = try store.id(["build", "--from-id", "1", "--run", "echo web:x:33:33::/var/www:/bin/sh >> /etc/passwd"])
        let result = try store.plash(["run", "--user", "web", "--read-only", "--tmpfs", "/scratch", "--dev", "--cap-drop", "ALL",
                                      web, "--", "sh", "-c", "id -u; echo $HOME; touch /x 2>/dev/null || echo read-only; "
                                      + "touch /scratch/y && echo tmpfs; ls /dev | wc -l"])
        #expect(result.stdout == "33\n/var/www\nread-only\ntmpfs\n13\n", "\(result)")
        let late = try store.plash(["run", web, "--user", "web"])
        #expect(late.status == 2 && late.stdout == "", "\(late)")
        #expect(late.stderr.hasPrefix("plash: --user: options go before the image: plash run --user USER[:GROUP] IMAGE ...\n"),
                "\(late)")
    }

    @Test func runIsolatesTooAndThenPID1IsTheInit() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        let result = try store.plash(["run", "--isolate", "1", "--", "sh", "-c",
                                      "grep CapBnd /proc/self/status; cat /proc/1/comm; ls -A /tmp | wc -l"])
        #expect(result.stdout == "CapBnd:\t00000000200405eb\nplash\n0\n", "\(result)")
    }

    /// A stored image's scratch tmpfs (its writable layer) is mounted on the store's
    /// files/ and goes with the old root's one detach: its container has the same mounts
    /// as one of the same files given with --root, whose tmpfs is detached by itself, and
    /// none of the host's, nor the way up to the host's root.
    @Test func aStoredImagesContainerHasTheMountsOfTheSameRootGivenWithRoot() throws {
        let store = TestStore()
        // Each mount's point and file system type (after the optional fields and `-`).
        let script = "awk '{ for (i = 7; $i != \"-\"; i++); print $5, $(i + 1) }' /proc/self/mountinfo; "
            + "[ \"$(ls -a /proc/..)\" = \"$(ls -a /)\" ] && echo same"
        let id = try store.id(["build", "--from", "busybox"])
        let stored = try store.plash(["run", id, "--", "/bin/sh", "-c", script])
        let given = try run(plashExec, ["--root", store.data + "/files/" + id, "--", "/bin/sh", "-c", script],
                            environment: store.environment)
        #expect(stored.stdout.hasPrefix("/ overlay\n") && stored.stdout.hasSuffix("\nsame\n") && !stored.stdout.contains(store.data),
                "\(stored)")
        #expect(stored.stdout == given.stdout, "\(stored)\n\(given)")
    }

    @Test func runPassesExecOptionsThrough() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        let result = try store.plash(["run", "--env", "X=1", "--cwd", "/etc", "--hostname", "box", "1", "--",
                                      "sh", "-c", "echo $X $(pwd) $(hostname)"])
        #expect(result.stdout == "1 /etc box\n", "\(result)")
    }

    @Test func runOfAnImageByName() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "echo named > /name"])
        #expect(try store.plash(["map", "mine", id]).status == 0)
        #expect(try store.plash(["map", "mine"]).stdout == id + "\n")
        #expect(try store.plash(["run", "mine", "cat", "/name"]).stdout == "named\n")
        #expect(try run(plashExec, ["mine", "--", "cat", "/name"], environment: store.environment).stdout == "named\n")
        #expect(try store.id(["build", "--from", "mine", "--run", "true"]) != id)
        #expect(try store.plash(["map", "-d", "mine"]).status == 0)
        #expect(try store.plash(["run", "mine"]).stderr == "plash: no image mine; to start from the image server's mine: plash run --image mine\n")
    }

    @Test func aBuildRunsInTheCallersDirectoryWithHomeButWithoutTmp() throws {
        let store = TestStore()
        let dir = makeDirectory()
        let hostTmp = "/tmp/plash-test-\(getpid())-\(UUID().uuidString.prefix(8))"
        _ = FileManager.default.createFile(atPath: hostTmp, contents: nil)
        defer { unlink(hostTmp) }
        let script = """
            pwd > /where
            ls -1 /home > /home-entries
            if [ -e \(hostTmp) ]; then echo yes; else echo no; fi > /tmp-seen
            """
        let id = try store.id(["build", "--from", "busybox", "--run", script], directory: dir)
        func read(_ name: String) throws -> String { try store.plash(["run", "--no-tmp", id, "--", "cat", name]).stdout }
        #expect(try read("/where") == dir + "\n")
        // The original's "home is mounted when building": the host's entries are seen.
        #expect(try read("/home-entries") == shell("ls -1 /home").stdout)
        #expect(try read("/tmp-seen") == "no\n")
    }

    @Test func aBuildSeesOnlyTheVariablesItIsGiven() throws {
        let store = TestStore()
        let dir = makeDirectory()
        let built = try store.plash(["build", "--from", "busybox", "--env", "GIVEN", "--run", "echo $GIVEN-$OTHER > /out"],
                                    directory: dir, environment: ["GIVEN": "g", "OTHER": "o", "PLASH_EXPORT": "OTHER"])
        let id = built.stdout.trimmingCharacters(in: .newlines)
        #expect(try store.plash(["run", id, "--", "cat", "/out"]).stdout == "g-\n", "\(built)")
    }

    @Test func buildPrintsOnlyTheIdOnStdout() throws {
        let store = TestStore()
        let result = try store.plash(["build", "--from", "busybox", "--run", "echo noise; echo more >&2"])
        #expect(result.stdout == "2\n")
        #expect(result.stderr.contains("noise\n"))
        #expect(result.stderr.contains("more\n"))
    }
}
