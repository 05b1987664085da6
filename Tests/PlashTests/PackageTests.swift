import Foundation
import PlashTestSupport
import Testing

/// scripts/package: the .deb and the tarball that machines without Swift install, made
/// from the binaries under test, and installed where no Swift has ever been: the real
/// Debian bookworm root of DebootstrapTests, in a plash container.
@Suite struct PackageTests {
    static let version = "0.1.0"

    /// The package directory, made once.
    static let packaged = Fixture { () throws -> String in
        let out = makeDirectory("package")
        let made = try run(repositoryDirectory + "/scripts/package", [out], environment: ["PLASH_BINARIES": productsDirectory.path])
        guard made.status == 0 else { throw SetupError("scripts/package: \(made)") }
        return out
    }

    var deb: String { get throws { try Self.packaged.get() + "/plash_\(Self.version)_\(imageArchitecture).deb" } }
    var tarball: String { get throws { try Self.packaged.get() + "/plash-\(Self.version)-linux-\(imageArchitecture).tar.gz" } }

    @Test func theDebHoldsTheProgramsTheManPagesCompletionsAndDocsAndRecommendsWhatPlashUses() throws {
        let listing = try run("/usr/bin/dpkg-deb", ["--contents", try deb])
        #expect(listing.status == 0, "\(listing)")
        for file in ["./usr/bin/plash", "./usr/bin/plash-builder", "./usr/bin/plash-exec", "./usr/share/man/man1/plash.1.gz", "./usr/share/man/man1/plash-builder.1.gz",
                     "./usr/share/man/man1/plash-exec.1.gz", "./usr/share/man/man7/plash-macros.7.gz",
                     "./usr/share/bash-completion/completions/plash", "./usr/share/zsh/site-functions/_plash",
                     "./usr/share/fish/vendor_completions.d/plash.fish", "./usr/share/doc/plash/copyright",
                     "./usr/share/doc/plash/docs/plash.md", "./usr/share/doc/plash/examples/systemd/plash@.service",
                     "./usr/share/doc/plash/examples/s6/httpd-demo/run", "./usr/share/doc/plash/examples/runit/httpd-demo/run"] {
            #expect(listing.stdout.contains(" " + file + "\n"), "\(file)")
        }
        let recommends = try run("/usr/bin/dpkg-deb", ["--field", try deb, "Recommends"])
        #expect(recommends.stdout == "uidmap, fuse-overlayfs, mmdebstrap, busybox-static\n", "\(recommends)")
    }

    @Test func lintianFindsNoErrorInTheDeb() throws {
        guard FileManager.default.fileExists(atPath: "/usr/bin/lintian") else {
            #expect(!mustRun, "lintian is missing: scripts/install-deps lintian")
            return
        }
        let checked = try run("/usr/bin/lintian", [try deb])
        let errors = checked.stdout.split(separator: "\n").filter { $0.hasPrefix("E: ") }
        #expect(errors.isEmpty, "\(checked)")
    }

    @Test func theTarballsInstallScriptPutsPlashUnderAPrefixThatRunsAndUninstallsAgain() throws {
        let dir = makeDirectory("tarball")
        let unpacked = try run("/bin/tar", ["-xzf", try tarball, "-C", dir])
        #expect(unpacked.status == 0, "\(unpacked)")
        let tree = dir + "/plash-\(Self.version)-linux-\(imageArchitecture)"
        let prefix = makeDirectory("tarball-prefix")
        let installed = try run(tree + "/install", [prefix])
        #expect(installed.status == 0, "\(installed)")
        let store = TestStore()
        let session = try run(prefix + "/bin/plash", ["build", "--from", "busybox", "--run", "touch /file"], environment: store.environment)
        #expect(session.status == 0 && session.stdout == "2\n", "\(session)")
        #expect(try run(tree + "/install", ["--uninstall", prefix]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: prefix + "/bin/plash"))
    }

    /// plash --version and plash doctor name the version, and the commit of a build that
    /// scripts/stamp-commit described (scripts/test's and CI's).
    @Test func versionAndDoctorNameTheVersionAndTheCommit() throws {
        let version = try run(plash, ["--version"])
        #expect(version.status == 0 && version.stdout.hasPrefix("plash \(Self.version) ("), "\(version)")
        let doctor = try TestStore().plash(["doctor"])
        #expect(doctor.stdout.hasPrefix(version.stdout), "\(doctor)")
        #expect(try run(plashExec, ["--version"]).stdout == "plash-exec" + version.stdout.dropFirst("plash".count))
        let head = try run("/usr/bin/git", ["-C", repositoryDirectory, "rev-parse", "--short=12", "HEAD"])
        if mustRun && head.status == 0 {
            #expect(version.stdout.hasPrefix("plash \(Self.version) (commit \(head.stdout.trimmingCharacters(in: .newlines))"), "\(version)")
        }
    }

    /// The seed session on a Swift-less Debian 12 root: apt installs the .deb, then root
    /// and an ordinary user build on the real Alpine root from the test image server.
    /// Their stores and homes are tmpfs mounts: overlayfs takes no upper layer on the
    /// container's own overlay root, and the host's /home and /tmp are not shared.
    @Test func theDebInstallsWithAptOnDebianWithoutSwiftAndRunsTheSeedSessionAsRootAndAsAUser() throws {
        guard FileManager.default.fileExists(atPath: alpineRoot) else {
            #expect(!mustRun, "\(alpineRoot) is missing")
            return
        }
        let bookworm = try DebianBookworm.root.get()
        let server = try lxcImageServer()
        defer { server.stop() }
        let share = makeDirectory("deb-share")
        try FileManager.default.copyItem(atPath: try deb, toPath: share + "/plash.deb")
        let script = """
            set -e
            test ! -e /opt/swift && ! command -v swift
            apt-get install -y -q --no-install-recommends /deb/plash.deb > /dev/null
            export PLASH_LXC_SERVER=http://127.0.0.1:\(server.port)
            plash init
            plash build --image alpine --run 'touch /file' > /root/id
            plash run "$(cat /root/id)" -- ls /file
            useradd -m user
            cd /home/user
            setpriv --reuid user --regid user --init-groups env HOME=/home/user PLASH_LXC_SERVER=$PLASH_LXC_SERVER sh -ec '
                plash init
                plash build --image alpine --run "touch /file" > id
                plash run "$(cat id)" -- ls /file'
            """
        let result = try bookworm.store.plash(["run", "--no-home", "--no-tmp", "--tmpfs", "/home", "--tmpfs", "/tmp",
                                                     "--tmpfs", "/var/lib/plash", "--bind", share + ":/deb", bookworm.id, "--", "/bin/sh", "-c", script],
                                               deadline: DebianBookworm.buildDeadline)
        #expect(result.status == 0 && result.stdout == "/file\n/file\n", "\(result)")
    }
}
