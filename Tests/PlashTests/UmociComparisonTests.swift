import Foundation
import PlashTestSupport
import Testing

/// What plash unpacks from a registry against what `skopeo copy` + `umoci unpack` make of
/// the same image: same paths, types, modes (setuid, sticky), owners, sizes, link targets,
/// contents, device numbers and hard link counts. The Debian root is compared in
/// DebootstrapTests, where it is made.
@Suite struct UmociComparisonTests {
    /// Every path below `dir`, one line each: `PATH\tTYPE MODE UID:GID ...`.
    static let walker = """
        import hashlib, os, stat, sys
        def describe(path, name, out):
            st = os.lstat(path)
            kind = stat.S_IFMT(st.st_mode)
            fields = ['%o' % kind, '%04o' % stat.S_IMODE(st.st_mode), '%d:%d' % (st.st_uid, st.st_gid)]
            if stat.S_ISREG(kind):
                digest = hashlib.sha256()
                with open(path, 'rb') as f:
                    for chunk in iter(lambda: f.read(1 << 20), b''):
                        digest.update(chunk)
                fields += ['size=%d' % st.st_size, 'links=%d' % st.st_nlink, digest.hexdigest()]
            elif stat.S_ISLNK(kind):
                fields.append('-> ' + os.readlink(path))
            elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
                fields.append('dev=%d,%d' % (os.major(st.st_rdev), os.minor(st.st_rdev)))
            out.append(name + '\\t' + ' '.join(fields))
            if stat.S_ISDIR(kind):
                for entry in sorted(os.listdir(path)):
                    describe(os.path.join(path, entry), name + '/' + entry, out)
        out = []
        describe(sys.argv[1], '.', out)
        print('\\n'.join(out))
        """

    static func tree(_ dir: String) throws -> [String: String] {
        let walked = try run("/usr/bin/python3", ["-c", walker, dir])
        guard walked.status == 0 else { throw StoreTestError("walking \(dir): \(walked)") }
        var entries: [String: String] = [:]
        for line in walked.stdout.split(separator: "\n") {
            let parts = line.split(separator: "\t", maxSplits: 1).map(String.init)
            entries[parts[0]] = parts.count == 2 ? parts[1] : ""
        }
        return entries
    }

    /// The image NAME:TAG of `registry` pulled by plash into `store` and mounted, and
    /// unpacked by skopeo and umoci: their differences, one line per path.
    static func differences(_ registry: RegistryServer, _ reference: String, store: TestStore = TestStore()) throws -> [String] {
        let pulled = try store.plash(["import-docker", "\(registry.host)/\(reference)"])
        guard pulled.status == 0 else { throw StoreTestError("plash import-docker: \(pulled)") }
        let mountPoint = makeDirectory("plash-tree")
        let mounted = try store.plash(["mount", pulled.stdout.trimmingCharacters(in: .newlines), mountPoint])
        guard mounted.status == 0 else { throw StoreTestError("plash mount: \(mounted)") }
        defer { _ = try? store.plash(["umount", mountPoint]) }

        let dir = makeDirectory("umoci")
        let copied = try run("/usr/bin/skopeo", ["copy", "-q", "--src-tls-verify=false", "docker://\(registry.host)/\(reference)",
                                                 "oci:\(dir)/layout:t"])
        guard copied.status == 0 else { throw StoreTestError("skopeo copy: \(copied)") }
        let unpacked = try run("/usr/bin/umoci", ["unpack", "--image", dir + "/layout:t", dir + "/bundle"])
        guard unpacked.status == 0 else { throw StoreTestError("umoci unpack: \(unpacked)") }

        let plashTree = try tree(mountPoint), umociTree = try tree(dir + "/bundle/rootfs")
        return Set(plashTree.keys).union(umociTree.keys).sorted().compactMap { path in
            let mine = plashTree[path], theirs = umociTree[path]
            return mine == theirs ? nil : "\(path): plash \(mine ?? "missing"), umoci \(theirs ?? "missing")"
        }
    }

    /// Three layers: a base with every kind of entry; then whiteouts of a file and a
    /// directory, an opaque marker after its siblings, changed modes and owners, a file
    /// that becomes a directory, hard links; then the whited-out directory made anew.
    static func multiLayerLayout() throws -> String {
        let dir = makeDirectory("layers")
        let script = """
            import gzip, hashlib, io, json, os, tarfile, sys
            out = sys.argv[1]
            os.makedirs(out + '/blobs/sha256')
            def blob(data):
                digest = hashlib.sha256(data).hexdigest()
                with open(out + '/blobs/sha256/' + digest, 'wb') as f:
                    f.write(data)
                return 'sha256:' + digest, len(data)
            def layer(entries):
                raw = io.BytesIO()
                tar = tarfile.open(fileobj=raw, mode='w', format=tarfile.PAX_FORMAT)
                for name, kind, extra in entries:
                    info = tarfile.TarInfo(name)
                    info.type = kind
                    info.mode = extra.get('mode', 0o755 if kind == tarfile.DIRTYPE else 0o644)
                    info.uid, info.gid = extra.get('owner', (0, 0))
                    info.mtime = 1700000000
                    data = extra.get('data', b'')
                    info.size = len(data) if kind == tarfile.REGTYPE else 0
                    info.linkname = extra.get('link', '')
                    info.devmajor, info.devminor = extra.get('dev', (0, 0))
                    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
                tar.close()
                plain = raw.getvalue()
                packed = gzip.compress(plain, mtime=0)
                digest, size = blob(packed)
                return {'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip', 'digest': digest, 'size': size}, \\
                    'sha256:' + hashlib.sha256(plain).hexdigest()
            D, F, L, S, C, B, P = tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.LNKTYPE, tarfile.SYMTYPE, \\
                tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE
            base = [
                ('d', D, {}), ('d/keep', F, {'data': b'keep'}), ('d/gone', F, {'data': b'gone'}),
                ('o', D, {}), ('o/old', F, {'data': b'old'}), ('o/sub', D, {}), ('o/sub/y', F, {'data': b'y'}),
                ('w', D, {}), ('w/inner', D, {}), ('w/inner/z', F, {'data': b'z'}),
                ('t', D, {}), ('t/x', F, {'data': b'file first'}),
                ('bin', D, {}), ('bin/su', F, {'data': b'setuid', 'mode': 0o4755}),
                ('bin/sg', F, {'data': b'setgid', 'mode': 0o2755, 'owner': (0, 50)}),
                ('h', D, {}), ('h/a', F, {'data': b'linked'}), ('h/b', L, {'link': 'h/a'}),
                ('s', D, {}), ('s/rel', S, {'link': '../d/keep'}), ('s/abs', S, {'link': '/etc/passwd'}),
                ('s/dangling', S, {'link': 'nowhere'}),
                ('dev', D, {}), ('dev/null', C, {'dev': (1, 3), 'mode': 0o666}), ('dev/sda', B, {'dev': (8, 0), 'mode': 0o660}),
                ('dev/fifo', P, {}),
                ('tmp', D, {'mode': 0o1777}), ('home', D, {}), ('home/user', D, {'owner': (1000, 1000), 'mode': 0o700}),
                ('home/user/secret', F, {'data': b'secret', 'owner': (1000, 1000), 'mode': 0o640}),
            ]
            second = [
                ('d', D, {'mode': 0o700, 'owner': (5, 5)}), ('d/.wh.gone', F, {}),
                ('.wh.w', F, {}),
                ('o', D, {}), ('o/new', F, {'data': b'new'}), ('o/.wh..wh..opq', F, {}),
                ('t', D, {}), ('t/x', D, {}), ('t/x/child', F, {'data': b'then a directory'}),
                ('bin', D, {}), ('bin/su', F, {'data': b'setuid', 'mode': 0o4711}),
                ('h2', D, {}), ('h2/a', F, {'data': b'two'}), ('h2/b', L, {'link': 'h2/a'}), ('h2/c', L, {'link': 'h2/a'}),
            ]
            third = [('w', D, {'mode': 0o750}), ('w/fresh', F, {'data': b'fresh'})]
            layers, diff_ids = zip(*[layer(entries) for entries in (base, second, third)])
            config = json.dumps({'architecture': 'amd64', 'os': 'linux', 'config': {},
                                 'rootfs': {'type': 'layers', 'diff_ids': list(diff_ids)}}).encode()
            config_digest, config_size = blob(config)
            manifest = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                                   'config': {'mediaType': 'application/vnd.oci.image.config.v1+json',
                                              'digest': config_digest, 'size': config_size},
                                   'layers': list(layers)}).encode()
            manifest_digest, manifest_size = blob(manifest)
            with open(out + '/index.json', 'w') as f:
                json.dump({'schemaVersion': 2, 'manifests': [{'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                           'digest': manifest_digest, 'size': manifest_size,
                           'annotations': {'org.opencontainers.image.ref.name': 't'}}]}, f)
            with open(out + '/oci-layout', 'w') as f:
                json.dump({'imageLayoutVersion': '1.0.0'}, f)
            """
        let made = try run("/usr/bin/python3", ["-c", script, dir + "/layout"])
        guard made.status == 0 else { throw StoreTestError("python: \(made)") }
        return dir + "/layout"
    }

    @Test func aMultiLayerImageWithWhiteoutsLinksAndDevicesUnpacksAsUmociUnpacksIt() throws {
        let registry = try RegistryServer()
        defer { registry.stop() }
        try registry.push(try Self.multiLayerLayout(), tag: "t", as: "fixture:t")
        let differences = try Self.differences(registry, "fixture:t")
        #expect(differences.isEmpty, "\(differences.joined(separator: "\n"))")
    }
}
