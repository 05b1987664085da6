import Foundation
import PlashKit
import PlashTestSupport
import Testing

/// export-docker-archive, loaded by Debian's podman into a store of the test's own.
@Suite(.needs(.podman)) struct DockerArchiveTests {
    @Test func podmanLoadsTheArchiveToTheSameTreeAsPlashRunShows() throws {
        let store = TestStore()
        let id = try imageWithDeletions(store)
        let dir = makeDirectory("docker")
        let exported = try store.plash(["export-docker-archive", id, dir + "/image.tar", "--tag", "plash-test/deletions:v1"])
        #expect(exported.status == 0, "\(exported)")
        // vfs: podman's own store, in the test's directory, no overlay mounts of its own;
        // podman takes a runroot of 50 characters at most.
        let runroot = try shell("mktemp -d /tmp/plash-podman.XXXXXX").stdout.trimmingCharacters(in: .newlines)
        defer { _ = try? shell("rm -rf '\(runroot)'") }
        let podman = "podman --root '\(dir)/root' --runroot '\(runroot)' --storage-driver vfs"
        let loaded = try shell("\(podman) load -i '\(dir)/image.tar'")
        #expect(loaded.status == 0 && loaded.stdout.contains("localhost/plash-test/deletions:v1"), "\(loaded)")
        let mounted = try shell("\(podman) image mount localhost/plash-test/deletions:v1")
        #expect(mounted.status == 0, "\(mounted)")
        let rootfs = mounted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let inPodman = try run("/usr/sbin/chroot", [rootfs, "/bin/sh", "-c", rootListingScript])
        let inPlash = try store.plash(["run", id, "sh", "-c", rootListingScript], directory: "/")
        #expect(inPlash.status == 0 && inPodman.status == 0, "\(inPlash) \(inPodman)")
        #expect(inPlash.stdout == inPodman.stdout)
        #expect(inPodman.stdout.contains("/d/n ") && !inPodman.stdout.contains("/gone"), "\(inPodman.stdout)")
        try shell("\(podman) image umount --all")
    }

    /// As docker save names them: `tar xOf FILE manifest.json` finds it, and an OCI
    /// layout's tar its `index.json`; no `./` entry for the root.
    @Test func theArchivesMembersAreNamedAsDockerSaveNamesThem() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        let dir = makeDirectory("docker")
        #expect(try store.plash(["export-docker-archive", "1", dir + "/da.tar", "--tag", "plash-test/bare:v1"]).status == 0)
        let manifest = try shell("tar -xOf '\(dir)/da.tar' manifest.json")
        #expect(manifest.status == 0 && manifest.stdout.contains("\"RepoTags\":[\"plash-test/bare:v1\"]"), "\(manifest)")
        let repositories = try shell("tar -xOf '\(dir)/da.tar' repositories")
        #expect(repositories.status == 0 && repositories.stdout.hasPrefix("{\"plash-test/bare\":{\"v1\":"), "\(repositories)")
        #expect(try store.plash(["export-oci", "1", dir + "/layout.tar"]).status == 0)
        #expect(try shell("tar -xOf '\(dir)/layout.tar' index.json oci-layout").status == 0)
        for archive in ["da.tar", "layout.tar"] {
            let names = try shell("tar -tf '\(dir)/\(archive)'").stdout.split(separator: "\n")
            #expect(!names.isEmpty && names.allSatisfy { !$0.hasPrefix("./") && !$0.hasPrefix("/") }, "\(archive): \(names)")
        }
        // plash reads what it wrote.
        #expect(try store.plash(["import-docker-archive", dir + "/da.tar"]).status == 0)
        #expect(try store.plash(["import-oci", dir + "/layout.tar"]).status == 0)
    }

    @Test func aReferenceDockerWouldRefuseIsAUsageErrorAndWritesNothing() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        let dir = makeDirectory("docker")
        let result = try store.plash(["export-docker-archive", "1", dir + "/image.tar", "--tag", "Upper/Case:v1"])
        #expect(result.status == 2, "\(result)")
        #expect(result.stderr.hasPrefix("plash: export-docker-archive: Upper/Case:v1: not a docker reference"), "\(result)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == [])
    }

    /// Docker's grammar, which podman load holds a manifest's RepoTags to: what it would
    /// refuse is refused before anything is written; the odd names it takes are taken.
    @Test func onlyReferencesDockersGrammarAllowsAreTaken() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        let dir = makeDirectory("docker")
        for reference in ["a..b", "a//b", "a/./b", "a-", "a_", "_a", "a.", "a___b", "foo:bar:baz", "a:.x", "a:-x", "host:port/x",
                          "bad_host.x/a", "a/", String(repeating: "a", count: 256), "a:" + String(repeating: "t", count: 129)] {
            let result = try store.plash(["export-docker-archive", "1", dir + "/image.tar", "--tag", reference])
            #expect(result.status == 2 && result.stderr.hasPrefix("plash: export-docker-archive: \(reference): not a docker reference"),
                    "\(reference): \(result)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == [])
        for reference in ["a__b", "a---b", "x/a.b-c_d", "localhost:5000/a:_T.1-x", "my-host.example/a"] {
            #expect(dockerReference(reference) != nil, "\(reference)")
        }
        #expect(try store.plash(["export-docker-archive", "1", dir + "/image.tar", "--tag", "a---b/c__d:_T.1-x"]).status == 0)
        let runroot = try shell("mktemp -d /tmp/plash-podman.XXXXXX").stdout.trimmingCharacters(in: .newlines)
        defer { try? FileManager.default.removeItem(atPath: runroot) }
        let loaded = try shell("podman --root '\(dir)/root' --runroot '\(runroot)' --storage-driver vfs load -i '\(dir)/image.tar'")
        #expect(loaded.status == 0 && loaded.stdout.contains("a---b/c__d:_T.1-x"), "\(loaded)")
    }
}
