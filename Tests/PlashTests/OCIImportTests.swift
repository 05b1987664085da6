import Foundation
import PlashTestSupport
import Testing

/// import-oci and import-docker-archive: plash's own exports read back into an empty
/// store (two stores standing for two machines), layouts made by umoci, bad digests.
@Suite(.needs(.umoci)) struct OCIImportTests {
    @Test func anExportImportedIntoAnEmptyStoreGivesTheSameTreeAndTheSameDigests() throws {
        let first = TestStore(), second = TestStore()
        let id = try imageWithDeletions(first)
        let dir = makeDirectory("oci")
        #expect(try first.plash(["export-oci", id, dir + "/layout.tar", "--tag", "t"]).status == 0)
        let imported = try second.id(["import-oci", dir + "/layout.tar:t"])
        #expect(try rootListing(first, id) == rootListing(second, imported))
        #expect(try rootListing(second, imported).contains("/d/n ") && !rootListing(second, imported).contains("/gone"))
        // Exported again, the unchanged stack has the same digests: the same manifest.
        #expect(try first.plash(["export-oci", id, dir + "/a"]).status == 0)
        #expect(try second.plash(["export-oci", imported, dir + "/b"]).status == 0)
        let index = { (name: String) in try String(contentsOfFile: dir + "/\(name)/index.json", encoding: .utf8) }
        #expect(try index("a") == index("b"))
    }

    @Test func aDockerArchiveOfTheSameImageSharesTheImportedLayers() throws {
        let first = TestStore(), second = TestStore()
        let id = try imageWithDeletions(first)
        let dir = makeDirectory("oci")
        #expect(try first.plash(["export-oci", id, dir + "/layout"]).status == 0)
        #expect(try first.plash(["export-docker-archive", id, dir + "/docker.tar"]).status == 0)
        let fromOCI = try second.id(["import-oci", dir + "/layout"])
        let fromDocker = try second.plash(["import-docker-archive", dir + "/docker.tar"])
        #expect(fromDocker.status == 0 && fromDocker.stdout == fromOCI + "\n", "\(fromDocker)")
        #expect(second.indexedIDs.count == 3)
        #expect(try rootListing(first, id) == rootListing(second, fromOCI))
    }

    @Test func aLayerWhoseDigestIsWrongIsRefusedAndNothingIsStored() throws {
        let first = TestStore(), second = TestStore()
        let id = try imageWithDeletions(first)
        let dir = makeDirectory("oci")
        #expect(try first.plash(["export-oci", id, dir + "/layout"]).status == 0)
        // The top layer's blob, the smallest gzip, with byte 20 changed (one added: a
        // fixed byte would be the one there in one run of 256).
        let changed = try shell("""
            cd '\(dir)/layout/blobs/sha256' && f=$(for b in *; do file -b "$b" | grep -q gzip && echo "$(stat -c %s "$b") $b"; done | sort -n | head -1 | cut -d' ' -f2)
            dd if="$f" bs=1 skip=20 count=1 status=none | LC_ALL=C tr '\\000-\\377' '\\001-\\377\\000' | dd of="$f" bs=1 seek=20 conv=notrunc status=none && echo "$f"
            """)
        #expect(changed.status == 0, "\(changed)")
        let result = try second.plash(["import-oci", dir + "/layout"])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("plash: import-oci \(dir)/layout: blobs/sha256/") && result.stderr.contains(": its digest is sha256:"),
                "\(result)")
        #expect(second.indexedIDs == [] && second.stagingDirectories == [])
    }

    /// Each blob a layout names (the manifest, the config, a layer) is read as a registry's
    /// is: one byte more or less than its descriptor announces is refused, nothing stored.
    @Test func aBlobOfAnotherSizeThanItsDescriptorIsRefusedAndNothingIsStored() throws {
        let first = TestStore(), second = TestStore()
        let id = try imageWithDeletions(first)
        let dir = makeDirectory("oci")
        let script = """
            import hashlib, json, sys
            d, which, change = sys.argv[1], sys.argv[2], int(sys.argv[3])
            index = json.load(open(d + '/index.json')); entry = index['manifests'][0]
            if which == 'manifest':
                entry['size'] += change
            else:
                m = json.load(open(d + '/blobs/sha256/' + entry['digest'][7:]))
                (m['config'] if which == 'config' else m['layers'][-1])['size'] += change
                data = json.dumps(m).encode(); digest = hashlib.sha256(data).hexdigest()
                open(d + '/blobs/sha256/' + digest, 'wb').write(data)
                entry.update(digest='sha256:' + digest, size=len(data))
            json.dump(index, open(d + '/index.json', 'w'))
            """
        for which in ["manifest", "config", "layer"] {
            for change in [1, -1] {
                let layout = dir + "/\(which)\(change)"
                #expect(try first.plash(["export-oci", id, layout]).status == 0)
                let made = try run("/usr/bin/env", ["python3", "-c", script, layout, which, String(change)],
                                   environment: ["PATH": "/root/.pyenv/shims:/usr/local/bin:/usr/bin:/bin", "HOME": "/root"])
                #expect(made.status == 0, "\(made)")
                let result = try second.plash(["import-oci", layout])
                #expect(result.status == 1 && result.stderr.components(separatedBy: "plash:").count == 2
                        && result.stderr.contains("its descriptor announces"), "\(which) \(change): \(result)")
                #expect(second.indexedIDs == [] && second.stagingDirectories == [])
            }
        }
    }

    /// A layer's tar is checked against the diff_id its config gives it while it is
    /// extracted: a config that names another is refused, nothing stored.
    @Test func aLayerWhoseDiffIDIsNotTheConfigsIsRefusedAndNothingIsStored() throws {
        let first = TestStore(), second = TestStore()
        let id = try imageWithDeletions(first)
        let dir = makeDirectory("oci")
        #expect(try first.plash(["export-oci", id, dir + "/layout"]).status == 0)
        let script = """
            import hashlib, json, sys
            d = sys.argv[1]
            def put(value):
                data = json.dumps(value).encode(); digest = hashlib.sha256(data).hexdigest()
                open(d + '/blobs/sha256/' + digest, 'wb').write(data); return {'digest': 'sha256:' + digest, 'size': len(data)}
            index = json.load(open(d + '/index.json')); entry = index['manifests'][0]
            m = json.load(open(d + '/blobs/sha256/' + entry['digest'][7:]))
            c = json.load(open(d + '/blobs/sha256/' + m['config']['digest'][7:]))
            c['rootfs']['diff_ids'][-1] = 'sha256:' + '0' * 64
            m['config'].update(put(c)); entry.update(put(m))
            json.dump(index, open(d + '/index.json', 'w'))
            """
        let made = try run("/usr/bin/env", ["python3", "-c", script, dir + "/layout"],
                           environment: ["PATH": "/root/.pyenv/shims:/usr/local/bin:/usr/bin:/bin", "HOME": "/root"])
        #expect(made.status == 0, "\(made)")
        let result = try second.plash(["import-oci", dir + "/layout"])
        #expect(result.status == 1 && result.stderr.components(separatedBy: "plash:").count == 2
                && result.stderr.contains(": its diff_id is sha256:"), "\(result)")
        #expect(second.indexedIDs == [] && second.stagingDirectories == [])
    }

    /// Debian's umoci 0.4.7 writes layers without the end blocks and without the last
    /// file's padding; its --whiteout and --opaque are OCI's markers.
    @Test func aLayoutMadeByUmociImportsWithItsWhiteouts() throws {
        let store = TestStore()
        let dir = makeDirectory("umoci")
        let made = try shell("""
            set -e; cd '\(dir)'; mkdir -p src/dir && echo hi > src/dir/a && echo b > src/b
            umoci init --layout l && umoci new --image l:t
            umoci insert --image l:t /bin/busybox /bin/busybox
            umoci insert --image l:t src/dir /d && echo x > src/dir/old && umoci insert --image l:t src/dir /d
            umoci insert --image l:t src/b /b && umoci insert --image l:t --whiteout /b
            rm src/dir/old && umoci insert --image l:t --opaque src/dir /d
            """)
        #expect(made.status == 0, "\(made)")
        let id = try store.id(["import-oci", dir + "/l:t"])
        let seen = try store.plash(["run", id, "/bin/busybox", "sh", "-c", "/bin/busybox ls /d; /bin/busybox ls /b"], directory: "/")
        #expect(seen.stdout == "a\n" && seen.stderr.contains("/b: No such file or directory"), "\(seen)")
    }

    /// A layout an ordinary user may not read (the directory, or its index.json), with
    /// subordinate ids (the import runs as root of their user namespace) and without:
    /// one line that names the layout.
    @Test func anUnreadableLayoutIsNamedInOneLine() throws {
        let first = TestStore()
        let parent = makeDirectory("unreadable")
        let layout = parent + "/layout"
        #expect(try first.plash(["export-oci", try first.id(["import", "busybox"]), layout]).status == 0)
        try shell("chmod 755 '\(parent)'")
        for user in [try userWithSubordinateIDs, try userWithoutSubordinateIDs] {
            let cwd = makeDirectory("oci-user", ownedBy: user)
            for mode in ["chmod 700 '\(layout)'", "chmod 755 '\(layout)' && chmod 600 '\(layout)/index.json'"] {
                try shell(mode)
                let refused = try plashAs(user, ["import-oci", layout], data: cwd + "/store", directory: cwd)
                #expect(refused.status == 1 && refused.stderr.split(separator: "\n").count == 1
                        && refused.stderr.hasPrefix("plash: import-oci \(layout): ") && refused.stderr.hasSuffix(": Permission denied\n"),
                        "\(user.name) \(mode): \(refused)")
            }
            try shell("chmod 644 '\(layout)/index.json'")
        }
    }

    @Test func aBuildStartsFromALayoutOrADockerArchiveAndIsCached() throws {
        let first = TestStore(), second = TestStore()
        let id = try imageWithDeletions(first)
        let dir = makeDirectory("oci")
        #expect(try first.plash(["export-oci", id, dir + "/layout", "--tag", "t"]).status == 0)
        #expect(try first.plash(["export-docker-archive", id, dir + "/docker.tar"]).status == 0)
        let built = try second.id(["build", "--from-oci", dir + "/layout:t", "--run", "cat /d/n > /copy"])
        #expect(try second.id(["build", "--from-oci", dir + "/layout:t", "--run", "cat /d/n > /copy"]) == built)
        #expect(try second.id(["build", "--from-docker-archive", dir + "/docker.tar", "--run", "cat /d/n > /copy"]) == built)
        #expect(try second.plash(["run", built, "cat", "/copy"]).stdout == "new\n")
    }

    /// An index of two platforms: the arm64 manifest's blob is missing, so only the
    /// amd64 one can be read.
    @Test func aMultiArchIndexResolvesToLinuxAmd64() throws {
        let first = TestStore(), second = TestStore()
        let id = try imageWithDeletions(first)
        let dir = makeDirectory("oci")
        #expect(try first.plash(["export-oci", id, dir + "/layout"]).status == 0)
        let script = """
            import hashlib, json, sys
            d = sys.argv[1]; index = json.load(open(d + '/index.json')); m = index['manifests'][0]; del m['annotations']
            arm = dict(m, digest='sha256:' + '0' * 64, platform={'os': 'linux', 'architecture': 'arm64'})
            amd = dict(m, platform={'os': 'linux', 'architecture': 'amd64'})
            nested = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.index.v1+json', 'manifests': [arm, amd]}).encode()
            digest = hashlib.sha256(nested).hexdigest(); open(d + '/blobs/sha256/' + digest, 'wb').write(nested)
            index['manifests'] = [{'mediaType': 'application/vnd.oci.image.index.v1+json', 'digest': 'sha256:' + digest,
                                   'size': len(nested), 'annotations': {'org.opencontainers.image.ref.name': 'multi'}}]
            json.dump(index, open(d + '/index.json', 'w'))
            """
        let made = try run("/usr/bin/env", ["python3", "-c", script, dir + "/layout"],
                           environment: ["PATH": "/root/.pyenv/shims:/usr/local/bin:/usr/bin:/bin", "HOME": "/root"])
        #expect(made.status == 0, "\(made)")
        let imported = try second.id(["import-oci", dir + "/layout:multi"])
        #expect(try rootListing(first, id) == rootListing(second, imported))
    }
}
