import Foundation

/// A real Debian bookworm root from mmdebstrap and Debian's mirror, built once per test
/// run as root and once as an ordinary user (at the same time: the tests that need them
/// run in parallel). DebootstrapTests, BuildHostTests and PackageTests build on it.
public enum DebianBookworm {
    /// The root's build as root: its store, the image, what the build printed.
    public struct Built {
        public let store: TestStore
        public let id: String
        public let result: Finished
    }

    /// Both builds, root's and the user's (with subordinate ids, in a store of their own),
    /// started together by the first test that needs either: the tests waiting for them
    /// may hold every thread of the test process, so they are processes of their own.
    static let builds = Fixture { () throws -> (store: TestStore, root: Child, cwd: String, user: Child) in
        try require(.mmdebstrap)
        let user = try userWithSubordinateIDs
        let cwd = makeDirectory("userdeb", ownedBy: user)
        let store = TestStore()
        let root = try Child(plash, ["build", "--from-debootstrap", "bookworm"], environment: store.environment,
                             deadline: buildDeadline)
        let users = try user.start(userPlash, ["build", "--from-debootstrap", "bookworm"],
                                   environment: ["PLASH_DATA": cwd + "/store"], directory: cwd, deadline: buildDeadline)
        return (store, root, cwd, users)
    }

    public static let root = Fixture { () throws -> Built in
        let (store, child, _, _) = try builds.get()
        let result = child.finish()
        guard result.status == 0 else { throw SetupError("plash build --from-debootstrap bookworm: \(result)") }
        return Built(store: store, id: result.stdout.trimmingCharacters(in: .newlines), result: result)
    }

    /// The user's build: its working directory, its PLASH_DATA, what it printed.
    public static let user = Fixture { () throws -> (cwd: String, data: String, result: Finished) in
        let (_, _, cwd, child) = try builds.get()
        return (cwd, cwd + "/store", child.finish())
    }

    /// The root as an OCI layout (export-oci, tag bookworm), made once.
    public static let layout = Fixture { () throws -> String in
        let built = try root.get()
        let dir = makeDirectory("bookworm-oci")
        let exported = try built.store.plash(["export-oci", built.id, dir + "/layout", "--tag", "bookworm"])
        guard exported.status == 0 else { throw SetupError("export-oci: \(exported)") }
        return dir + "/layout"
    }

    /// A bound for mmdebstrap's build, which downloads about 100 packages from Debian's
    /// mirror and unpacks them (a few minutes; on a loaded machine many more), and for
    /// the steps that pack, push, pull or unpack the whole root, or run apt-get in it.
    public static let buildDeadline: Double = 1800

    /// A PATH without mmdebstrap: what runs it fails.
    public static let noMmdebstrap = "/usr/local/nowhere"
}
