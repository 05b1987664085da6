import Foundation
import PlashTestSupport
import Testing

/// What plash unpacks from a registry against what `skopeo copy` + `umoci unpack` make of
/// the same image: same paths, types, modes (setuid, sticky), owners, sizes, link targets,
/// contents, device numbers and hard link counts. The Debian root is compared in
/// DebootstrapTests, where it is made.
@Suite(.needs(.skopeo, .umoci, .python3)) struct UmociComparisonTests {
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
        let differences = try umociDifferences(registry, "fixture:t")
        #expect(differences.isEmpty, "\(differences.joined(separator: "\n"))")
    }
}
