import Foundation
import PlashKit
import PlashTestSupport
import Testing

/// Layer blobs kept in the store (LayerBlob.swift): an imported layer leaves as the blob
/// it came as, digests unchanged; a built layer is compressed once.
@Suite(.needs(.skopeo, .umoci, .ociImageTool)) struct KeptBlobTests {
    /// The kept blobs of a store, as `path inode` lines.
    func keptBlobs(_ store: TestStore) throws -> [String] {
        let found = try shell("cd '\(store.data)' && find layer -name _blob -printf '%p %i\\n' | sort")
        return found.stdout.split(separator: "\n").map(String.init)
    }

    @Test func anImageBuiltOnAnImportedLayoutKeepsItsLayersDigestsAndAddsTheNewLayer() throws {
        let store = TestStore()
        let dir = makeDirectory("kept")
        let source = try umociLayout(dir)
        let base = try store.id(["import-oci", source + ":t"])
        let top = try store.id(["build", "-f", base, "--run", "echo hi > /new"])
        #expect(try store.plash(["export-oci", top, dir + "/out", "--tag", "x"]).status == 0)
        let before = try layoutLayers(source, "t"), after = try layoutLayers(dir + "/out", "x")
        #expect(before.digests.count == 2 && after.digests.count == 3, "\(before) \(after)")
        #expect(Array(after.digests.prefix(2)) == before.digests && Array(after.diffIDs.prefix(2)) == before.diffIDs,
                "\(before) \(after)")
        #expect(!before.digests.contains(after.digests[2]))
        // Other tools read it: every blob checked against its digest, the tree unpacked.
        let validated = try shell("oci-image-tool validate --type image --ref name=x '\(dir)/out'")
        #expect(validated.status == 0, "\(validated)")
        let copied = try shell("skopeo copy oci:'\(dir)/out':x oci:'\(dir)/copy':x")
        #expect(copied.status == 0, "\(copied)")
        let unpacked = try shell("umoci unpack --image '\(dir)/out':x '\(dir)/bundle' >/dev/null && cat '\(dir)/bundle/rootfs/new' && test -x '\(dir)/bundle/rootfs/bin/busybox'")
        #expect(unpacked.status == 0 && unpacked.stdout == "hi\n", "\(unpacked)")
        // Exported again: the same bytes.
        #expect(try store.plash(["export-oci", top, dir + "/again", "--tag", "x"]).status == 0)
        let a = try shell("cd '\(dir)/out' && cat index.json && ls -l blobs/sha256").stdout
        let b = try shell("cd '\(dir)/again' && cat index.json && ls -l blobs/sha256").stdout
        #expect(a == b, "\(a)\n\(b)")
    }

    /// A layout tar (unpacked into plash's staging, its blobs hard-linked into the
    /// layers) keeps its digests too; a docker archive carries the source's own tars.
    @Test func aLayoutTarKeepsItsDigestsAndADockerArchiveCarriesTheSourcesTars() throws {
        let store = TestStore()
        let dir = makeDirectory("kept")
        let source = try umociLayout(dir)
        #expect(try shell("tar -cf '\(dir)/src.tar' -C '\(source)' .").status == 0)
        let base = try store.id(["import-oci", dir + "/src.tar:t"])
        let top = try store.id(["build", "-f", base, "--run", "echo hi > /new"])
        #expect(try store.plash(["export-oci", top, dir + "/out.tar", "--tag", "x"]).status == 0)
        #expect(try shell("mkdir '\(dir)/out' && tar -xf '\(dir)/out.tar' -C '\(dir)/out'").status == 0)
        let before = try layoutLayers(source, "t"), after = try layoutLayers(dir + "/out", "x")
        #expect(Array(after.digests.prefix(2)) == before.digests && Array(after.diffIDs.prefix(2)) == before.diffIDs,
                "\(before) \(after)")

        #expect(try store.plash(["export-docker-archive", top, dir + "/docker.tar"]).status == 0)
        let listed = try shell("mkdir '\(dir)/docker' && tar -xf '\(dir)/docker.tar' -C '\(dir)/docker' && cat '\(dir)/docker/manifest.json'")
        let diffID = before.diffIDs.first ?? "none"
        #expect(listed.stdout.contains("blobs/sha256/" + diffID.dropFirst("sha256:".count)), "\(listed)")
        let hashed = try shell("sha256sum < '\(dir)/docker/blobs/sha256/\(diffID.dropFirst("sha256:".count))'")
        #expect(hashed.stdout.hasPrefix(String(diffID.dropFirst("sha256:".count))), "\(hashed)")
    }

    /// A pull through Debian's docker-registry and a push back: the registry's own
    /// layer digests travel unchanged, and the new layer is added above them.
    @Test func anImagePulledFromARegistryAndPushedBackKeepsTheRegistrysLayers() throws {
        let store = TestStore()
        let dir = makeDirectory("kept")
        let registry = try RegistryServer()
        defer { registry.stop() }
        try registry.push(try umociLayout(dir), tag: "t", as: "kept/base:1")
        let base = try store.id(["import-docker", registry.host + "/kept/base:1"])
        let top = try store.id(["build", "-f", base, "--run", "echo hi > /new"])
        let pushed = try store.plash(["push", top, registry.host + "/kept/top:1"])
        #expect(pushed.status == 0, "\(pushed)")
        let layers = { (name: String) in
            try shell("skopeo inspect --tls-verify=false docker://\(registry.host)/\(name) | tr -d ' \n' | grep -o '\"Layers\":\\[[^]]*'").stdout.trimmingCharacters(in: .newlines)
        }
        let pulled = try layers("kept/base:1"), sent = try layers("kept/top:1")
        #expect(pulled.contains("sha256:") && sent.hasPrefix(pulled + ",\"sha256:"), "\(pulled)\n\(sent)")
        // A download is kept 0644 like every other blob: a layout tar's entries agree.
        #expect(try store.plash(["export-oci", top, dir + "/out.tar"]).status == 0)
        let modes = try shell("tar -tvf '\(dir)/out.tar' | grep 'blobs/sha256/.' | cut -d' ' -f1 | sort -u")
        #expect(modes.stdout == "-rw-r--r--\n", "\(modes)")
    }

    /// A layout directory's blobs are copied into the store, not linked: changing the
    /// layout in place afterwards changes nothing in the store.
    @Test func aLayoutChangedAfterItsImportLeavesTheKeptBlobsAlone() throws {
        let store = TestStore()
        let dir = makeDirectory("kept")
        let source = try umociLayout(dir)
        let id = try store.id(["import-oci", source + ":t"])
        let changed = try shell("for b in '\(source)'/blobs/sha256/*; do printf X | dd of=\"$b\" bs=1 seek=30 conv=notrunc status=none; done")
        #expect(changed.status == 0, "\(changed)")
        let exported = try store.plash(["export-oci", id, dir + "/out", "--tag", "t"])
        #expect(exported.status == 0, "\(exported)")
        #expect(try layoutLayers(dir + "/out", "t").digests.count == 2)
        #expect(try shell("cd '\(dir)/out/blobs/sha256' && for b in *; do echo \"$b  $b\"; done | sha256sum -c --quiet").status == 0)
    }

    /// Layers without a kept blob go into a docker archive as tars written from their
    /// files, named by their own digest (and keep no blob: nothing was compressed).
    @Test func aDockerArchiveOfLayersNeverExportedCarriesTheirPlainTars() throws {
        let store = TestStore()
        let id = try imageWithDeletions(store)
        let dir = makeDirectory("kept")
        #expect(try store.plash(["export-docker-archive", id, dir + "/docker.tar"]).status == 0)
        let checked = try shell("""
            set -e; mkdir '\(dir)/docker' && tar -xf '\(dir)/docker.tar' -C '\(dir)/docker' && cd '\(dir)/docker/blobs/sha256'
            n=0; for b in *; do tar -tf "$b" >/dev/null 2>&1 || continue; test "$(sha256sum < "$b" | cut -d' ' -f1)" = "$b"; n=$((n+1)); done
            test $n = 3
            """)
        #expect(checked.status == 0, "\(checked)")
        #expect(try keptBlobs(store) == [])
    }

    /// The first export compresses the built layers and keeps the blobs; the second
    /// makes none again (the same files, not new ones) and gives the same layout.
    @Test func aSecondExportOfABuiltImageCompressesNothing() throws {
        let store = TestStore()
        let id = try imageWithDeletions(store)
        let dir = makeDirectory("kept")
        #expect(try keptBlobs(store) == [])
        #expect(try store.plash(["export-oci", id, dir + "/a"]).status == 0)
        let kept = try keptBlobs(store)
        #expect(kept.count == 3, "\(kept)")
        #expect(try store.plash(["export-oci", id, dir + "/b.tar"]).status == 0)
        #expect(try keptBlobs(store) == kept)
        #expect(try shell("mkdir '\(dir)/b' && tar -xf '\(dir)/b.tar' -C '\(dir)/b' && diff -r '\(dir)/a' '\(dir)/b'").status == 0)
    }

    /// Exports at once of an image never exported all compress its layers and keep the
    /// blobs: the same bytes, renamed into place, so each gets a whole one.
    @Test func exportsAtOnceAllSucceedWithTheSameLayout() throws {
        let store = TestStore()
        let id = try imageWithDeletions(store)
        let dir = makeDirectory("kept")
        let results = runConcurrently((0..<4).map { n in { try store.plash(["export-oci", id, dir + "/out\(n)"]) } })
        #expect(results.allSatisfy { $0.status == 0 }, "\(results)")
        let compared = try shell("cd '\(dir)' && diff -r out0 out1 && diff -r out0 out2 && diff -r out0 out3")
        #expect(compared.status == 0, "\(compared)")
        #expect(try keptBlobs(store).count == 3)
        #expect(try store.plash(["export-oci", id, dir + "/after"]).status == 0)
        #expect(try shell("diff -r '\(dir)/out0' '\(dir)/after'").status == 0)
    }

    @Test func aDamagedBlobOfABuiltLayerIsMadeAgainAndOfAnImportedOneRefused() throws {
        let store = TestStore()
        let dir = makeDirectory("kept")
        let base = try store.id(["import-oci", try umociLayout(dir) + ":t"])
        let top = try store.id(["build", "-f", base, "--run", "echo hi > /new"])
        #expect(try store.plash(["export-oci", top, dir + "/good"]).status == 0)
        // index/ID -> ../layer/0/…: the node, as plash names it.
        let node = { (id: String) in store.data + (try FileManager.default.destinationOfSymbolicLink(atPath: store.data + "/index/" + id)).dropFirst(2) }
        let topBlob = try node(top) + "/_blob", baseBlob = try node(base) + "/_blob"
        // One byte changed, then the blob cut short: both made again, the same bytes.
        for damage in ["printf X | dd of='\(topBlob)' bs=1 seek=30 conv=notrunc status=none", "truncate -s 20 '\(topBlob)'"] {
            #expect(try shell(damage).status == 0)
            let exported = try store.plash(["export-oci", top, dir + "/again"])
            #expect(exported.status == 0, "\(exported)")
            #expect(try shell("diff -r '\(dir)/good' '\(dir)/again'").status == 0)
        }
        // The imported one cannot be made again: refused, and nothing written.
        for (damage, why) in [("printf X | dd of='\(baseBlob)' bs=1 seek=30 conv=notrunc status=none", "its digest is sha256:"),
                              ("rm '\(baseBlob)'", "missing")] {
            #expect(try shell(damage).status == 0)
            let refused = try store.plash(["export-oci", top, dir + "/refused"])
            #expect(refused.status == 1 && refused.stderr.split(separator: "\n").count == 1, "\(refused)")
            #expect(refused.stderr.contains("\(baseBlob) (the layer's imported blob): \(why)"), "\(refused)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/refused/index.json"))
            let archive = try store.plash(["export-docker-archive", top, dir + "/refused.tar"])
            #expect(archive.status == 1 && !FileManager.default.fileExists(atPath: dir + "/refused.tar"), "\(archive)")
        }
    }

    /// A docker archive holds layers uncompressed, checked against the diff_id the
    /// config will name: a descriptor whose diff_id is another (well-formed) digest is
    /// refused in one line, and no archive is written.
    @Test func aDockerArchiveOfALayerWhoseKeptDiffIDIsForgedIsRefused() throws {
        let store = TestStore()
        let dir = makeDirectory("kept")
        let base = try store.id(["import-oci", try umociLayout(dir) + ":t"])
        #expect(try store.plash(["export-docker-archive", base, dir + "/good.tar"]).status == 0)
        let node = store.data + (try FileManager.default.destinationOfSymbolicLink(atPath: store.data + "/index/" + base)).dropFirst(2)
        let forged = "sha256:" + String(repeating: "a", count: 64)
        #expect(try shell("sed -i 's|\"diff_id\":\"sha256:[0-9a-f]*|\"diff_id\":\"\(forged)|' '\(node)/_blob.json' && grep -q \(forged) '\(node)/_blob.json'").status == 0)
        let (refused, ended) = try runWithDeadline(PlashTestSupport.plash, ["export-docker-archive", base, dir + "/refused.tar"],
                                                   environment: store.environment)
        #expect(ended && refused.status == 1 && refused.stderr.split(separator: "\n").count == 1, "\(refused)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/refused.tar"))
    }

    /// What is put in a node's place of `_blob` or `_blob.json` is never waited on nor
    /// followed: a FIFO, a symlink to a file of root's, a descriptor whose diff_id is a
    /// path or whose type is no layer's. A built layer's blob is made again; an imported
    /// one, or a bad descriptor, is refused in one line, nothing written.
    @Test func aFIFOSymlinkOrForgedDescriptorInANodeIsNeitherWaitedOnNorExported() throws {
        let store = TestStore()
        let dir = makeDirectory("kept")
        let base = try store.id(["import-oci", try umociLayout(dir) + ":t"])
        let top = try store.id(["build", "-f", base, "--run", "echo hi > /new"])
        #expect(try store.plash(["export-oci", top, dir + "/good"]).status == 0)
        let node = { (id: String) in store.data + (try FileManager.default.destinationOfSymbolicLink(atPath: store.data + "/index/" + id)).dropFirst(2) }
        let topNode = try node(top), baseNode = try node(base)
        let export = { (target: String) in
            try runWithDeadline(PlashTestSupport.plash, ["export-oci", top, dir + "/" + target], environment: store.environment)
        }
        for replace in ["mkfifo", "ln -s /etc/shadow"] {
            #expect(try shell("rm '\(topNode)/_blob' && \(replace) '\(topNode)/_blob'").status == 0)
            let (remade, ended) = try export("again")
            #expect(ended && remade.status == 0, "\(remade)")
            #expect(try shell("diff -r '\(dir)/good' '\(dir)/again' && test -f '\(topNode)/_blob' -a ! -L '\(topNode)/_blob'").status == 0)
        }
        let saved = dir + "/saved"
        #expect(try shell("mkdir '\(saved)' && cp -a '\(baseNode)/_blob' '\(baseNode)/_blob.json' '\(saved)/'").status == 0)
        let forged = [("rm '\(baseNode)/_blob' && mkfifo '\(baseNode)/_blob'", "_blob (the layer's imported blob): not a regular file"),
                      ("rm '\(baseNode)/_blob' && ln -s /etc/shadow '\(baseNode)/_blob'", "_blob (the layer's imported blob): not a regular file"),
                      ("rm '\(baseNode)/_blob.json' && mkfifo '\(baseNode)/_blob.json'", "_blob.json: not a layer's blob descriptor"),
                      ("sed -i 's|\"diff_id\":\"sha256:[0-9a-f]*|\"diff_id\":\"sha256:../../x|' '\(baseNode)/_blob.json'", "_blob.json: not a layer's blob descriptor"),
                      ("sed -i 's|\"mediaType\":\"[^\"]*|\"mediaType\":\"text/html|' '\(baseNode)/_blob.json'", "_blob.json: not a layer's blob descriptor")]
        for (damage, why) in forged {
            #expect(try shell("rm -f '\(baseNode)/_blob' '\(baseNode)/_blob.json' && cp -a '\(saved)/_blob' '\(saved)/_blob.json' '\(baseNode)/' && \(damage)").status == 0)
            let (refused, ended) = try export("refused")
            #expect(ended && refused.status == 1 && refused.stderr.split(separator: "\n").count == 1, "\(damage): \(refused)")
            #expect(refused.stderr.contains(baseNode + "/" + why), "\(refused)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/refused/index.json"))
        }
    }

    @Test func keptBlobsGoWithTheirLayersAndDuCountsThem() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        // Random bytes do not compress: the kept blob is about as large as the layer.
        let id = try store.id(["build", "-f", "1", "--run", "head -c 2000000 /dev/urandom > /random"])
        let usage = { try storeUsage(Store(path: store.data)).first { $0.id == Int(id) }?.layer ?? 0 }
        let before = try usage()
        #expect(try store.plash(["export-oci", id, makeDirectory("kept") + "/out"]).status == 0)
        let after = try usage()
        #expect(after - before >= 2_000_000, "\(before) \(after)")
        // ls shows the same size as du: the layer's files and its kept blob.
        let listed = try listImages(Store(path: store.data)).first { $0.id == Int(id) }?.size
        #expect(listed == after, "ls \(listed.map(String.init) ?? "none"), du \(after)")
        #expect(try keptBlobs(store).count == 2)
        #expect(try store.plash(["rm", id]).status == 0)
        #expect(try keptBlobs(store).count == 1)
        #expect(try store.plash(["purge", "--yes"]).status == 0)
        #expect(try keptBlobs(store) == [])
    }

    @Test func cleanDropsPushHintsOfBlobsNoLayerKeeps() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        let id = try store.id(["build", "-f", "1", "--run", "touch /a"])
        #expect(try store.plash(["export-oci", id, makeDirectory("hints") + "/out"]).status == 0)
        let digest = { (node: String) in try readJSONObject(node + "/_blob.json")["digest"] as? String ?? "" }
        let base = store.data + "/layer/0/1", top = base + "/" + id
        let kept = try digest(base), gone = try digest(top)
        // As a pull or push leaves them (BlobSources): HOST/DIGEST -> repository.
        let host = store.data + "/blob-sources/127.0.0.1:5000"
        try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
        for blob in [kept, gone] { try FileManager.default.createSymbolicLink(atPath: host + "/" + blob, withDestinationPath: "qa/base") }
        #expect(try store.plash(["rm", id]).status == 0)
        #expect(try store.plash(["clean"]).status == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: host) == [kept])
        #expect(try store.plash(["rm", "1"]).status == 0)
        #expect(try store.plash(["clean"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: host))
    }
}
