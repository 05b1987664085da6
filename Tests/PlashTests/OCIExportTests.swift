import Foundation
import PlashTestSupport
import Testing

/// export-oci, read back by skopeo, umoci and oci-image-tool (Debian's packages; scripts/test
/// installs them).
@Suite(.needs(.skopeo, .umoci, .ociImageTool)) struct OCIExportTests {
    @Test func umociUnpacksTheSameTreeAsPlashRunShowsWithTheUpperLayersDeletions() throws {
        let store = TestStore()
        let id = try imageWithDeletions(store)
        let dir = makeDirectory("oci")
        let exported = try store.plash(["export-oci", id, dir + "/layout", "--tag", "t1"])
        #expect(exported.status == 0, "\(exported)")
        let inspected = try shell("skopeo inspect oci:'\(dir)/layout':t1")
        #expect(inspected.status == 0 && inspected.stdout.contains("\"Layers\""), "\(inspected)")
        let unpacked = try shell("umoci unpack --image '\(dir)/layout':t1 '\(dir)/bundle'")
        #expect(unpacked.status == 0, "\(unpacked)")
        let inPlash = try store.plash(["run", id, "sh", "-c", rootListingScript], directory: "/")
        let inUmoci = try run("/usr/sbin/chroot", [dir + "/bundle/rootfs", "/bin/sh", "-c", rootListingScript])
        #expect(inPlash.status == 0 && inUmoci.status == 0, "\(inPlash) \(inUmoci)")
        #expect(inPlash.stdout == inUmoci.stdout)
        #expect(inUmoci.stdout.contains("/d/n ") && !inUmoci.stdout.contains("/gone") && !inUmoci.stdout.contains("/d/sub"),
                "\(inUmoci.stdout)")
    }

    /// oci-image-tool validate (Debian's 1.0.0-rc1: `--type image` is the layout type)
    /// checks the index, manifest, config and every blob's digest, size and media type.
    /// That version cannot read any layout tar (its tar walker wraps its own end-of-walk
    /// signal into an error, skopeo's and umoci's tars fail the same), so the tar is
    /// checked by unpacking it with GNU tar and validating what it holds.
    @Test func ociImageToolValidatesTheLayoutAsADirectoryAndAsATar() throws {
        let store = TestStore()
        let id = try imageWithDeletions(store)
        let dir = makeDirectory("oci")
        #expect(try store.plash(["export-oci", id, dir + "/layout", "--tag", "t1"]).status == 0)
        #expect(try store.plash(["export-oci", id, dir + "/layout.tar", "--tag", "t1"]).status == 0)
        let validated = try shell("oci-image-tool validate --type image --ref name=t1 '\(dir)/layout'")
        #expect(validated.status == 0 && validated.stdout.contains("Validation succeeded"), "\(validated)")
        let untarred = try shell("""
            mkdir '\(dir)/untarred' && tar -xf '\(dir)/layout.tar' -C '\(dir)/untarred' &&
            oci-image-tool validate --type image --ref name=t1 '\(dir)/untarred'
            """)
        #expect(untarred.status == 0 && untarred.stdout.contains("Validation succeeded"), "\(untarred)")
    }

    @Test func theSameImageExportedTwiceHasTheSameDigests() throws {
        let store = TestStore()
        let id = try imageWithDeletions(store)
        let dir = makeDirectory("oci")
        #expect(try store.plash(["export-oci", id, dir + "/a"]).status == 0)
        #expect(try store.plash(["export-oci", id, dir + "/b.tar"]).status == 0)
        let untarred = try shell("mkdir '\(dir)/b' && tar -xf '\(dir)/b.tar' -C '\(dir)/b'")
        #expect(untarred.status == 0, "\(untarred)")
        let a = try shell("cd '\(dir)/a' && cat index.json && ls blobs/sha256").stdout
        let b = try shell("cd '\(dir)/b' && cat index.json && ls blobs/sha256").stdout
        #expect(a == b && a.contains("sha256:"), "\(a)\n\(b)")
        // skopeo copies the layout, every blob checked against its digest.
        let copied = try shell("skopeo copy oci:'\(dir)/a':latest oci:'\(dir)/copy':latest")
        #expect(copied.status == 0, "\(copied)")
    }

    /// A built layer is compressed in blocks on every core (archive.c): one core or all
    /// give the same bytes, which GNU gzip and Go's reader (umoci) read back whole.
    @Test func aLayersGzipIsTheSameOnOneCoreAsOnAllAndGzipAndUmociReadIt() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        // Many blocks, compressible and not.
        let id = try store.id(["build", "-f", "1", "--run", "head -c 1500000 /dev/urandom > /r; yes plash | head -c 3000000 > /y"])
        let dir = makeDirectory("oci")
        #expect(try store.plash(["export-oci", id, dir + "/all"]).status == 0)
        // Without the kept blobs, the next export compresses again: on one core.
        #expect(try shell("find '\(store.data)/layer' -name '_blob*' -delete").status == 0)
        let one = try run("/usr/bin/taskset", ["-c", "0", plash, "export-oci", id, dir + "/one"], environment: store.environment)
        #expect(one.status == 0, "\(one)")
        let compared = try shell("diff -r '\(dir)/all' '\(dir)/one' && cd '\(dir)/one/blobs/sha256' && gzip -t $(ls -S | head -1)")
        #expect(compared.status == 0, "\(compared)")
        let inPlash = try store.plash(["run", id, "sh", "-c", "cd / && sha256sum r y"])
        let inUmoci = try shell("umoci unpack --image '\(dir)/one':latest '\(dir)/bundle' >/dev/null && cd '\(dir)/bundle/rootfs' && sha256sum r y")
        #expect(inPlash.status == 0 && inPlash.stdout == inUmoci.stdout, "\(inPlash) \(inUmoci)")
    }

    @Test func aSecondTagKeepsTheFirstInTheLayout() throws {
        let store = TestStore()
        let id = try imageWithDeletions(store)
        let dir = makeDirectory("oci")
        #expect(try store.plash(["export-oci", "1", dir + "/l", "--tag", "base"]).status == 0)
        #expect(try store.plash(["export-oci", id, dir + "/l", "--tag", "top"]).status == 0)
        #expect(try shell("skopeo inspect oci:'\(dir)/l':base && skopeo inspect oci:'\(dir)/l':top").status == 0)
    }

    /// A tag outside image-spec's grammar of ref.name (what skopeo and umoci can name as
    /// DIR:TAG) is a usage error, nothing written; the odd ones it allows work.
    @Test func aTagTheLayoutGrammarRefusesIsAUsageErrorAndOddAllowedOnesWork() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        let dir = makeDirectory("oci")
        for tag in ["a b", "../x", "a\nb", "-lead", "trail-", ":", "a//b", "a---b", "caf\u{e9}", "a_"] {
            let result = try store.plash(["export-oci", "1", dir + "/layout", "--tag", tag])
            #expect(result.status == 2 && result.stderr.hasPrefix("plash: export-oci: ") && result.stderr.contains(": not an OCI image name"), "\(tag): \(result)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == [])
        for tag in ["UPPER", "x/y", "a@b", "v1.0+build:2", "a--b"] {
            #expect(try store.plash(["export-oci", "1", dir + "/layout", "--tag", tag]).status == 0)
            let inspected = try shell("skopeo inspect --raw 'oci:\(dir)/layout:\(tag)'")
            #expect(inspected.status == 0, "\(tag): \(inspected)")
        }
    }

    /// A DIR someone else made, whose index.json is a FIFO or a link to /dev/zero, is
    /// refused in one line: neither waited on nor read without end.
    @Test func aDirWhoseIndexIsAFIFOOrEndlessIsRefusedInOneLine() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        let dir = makeDirectory("oci")
        for (name, make) in [("fifo", "mkfifo"), ("zero", "ln -s /dev/zero")] {
            #expect(try shell("mkdir '\(dir)/\(name)' && \(make) '\(dir)/\(name)/index.json'").status == 0)
            // Its memory capped: a plash that reads /dev/zero on fails, not the machine.
            let (result, ended) = try runWithDeadline("/bin/sh", ["-c", "ulimit -v 2000000 && exec \"$0\" \"$@\"", PlashTestSupport.plash,
                                                                  "export-oci", "1", dir + "/" + name],
                                                      environment: store.environment, seconds: 20)
            #expect(ended && result.status == 1 && result.stderr == "plash: export-oci 1: \(dir)/\(name)/index.json: not an OCI image index\n",
                    "\(result)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/" + name) == ["index.json"])
        }
    }

    @Test func theConfigNamesPlashsEntrypointWhenTheImageHasOne() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        let with = try store.id(["build", "-f", "1", "--entrypoint", "echo hi"])
        let dir = makeDirectory("oci")
        #expect(try store.plash(["export-oci", with, dir + "/l", "--tag", "with"]).status == 0)
        #expect(try store.plash(["export-oci", "1", dir + "/l", "--tag", "without"]).status == 0)
        let config = try shell("skopeo inspect --config oci:'\(dir)/l':with").stdout
        #expect(config.contains(#""Entrypoint": ["#) && config.contains("/.plash-entrypoint"), "\(config)")
        let plain = try shell("skopeo inspect --config oci:'\(dir)/l':without").stdout
        #expect(plain.contains("PATH=") && !plain.contains("Entrypoint"), "\(plain)")
    }
}
