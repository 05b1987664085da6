import Foundation
import Testing
import PlashTestSupport

// The builder as real ordinary users (setpriv), in their own stores.

/// Runs plash as `user` in `directory`, with PLASH_DATA when given.
func plashAs(_ user: TestUser, _ arguments: [String], data: String? = nil, directory: String) throws -> Finished {
    try user.run(userPlash, arguments, environment: data.map { ["PLASH_DATA": $0] } ?? [:], directory: directory)
}

/// Files below `dirs` that belong to root on the host.
func rootOwnedFiles(_ dirs: [String]) throws -> String {
    try shell("find \(dirs.map { "'\($0)'" }.joined(separator: " ")) -user root").stdout
}

@Test func theQuickStartSessionPassesUnchangedAsAnOrdinaryUserInTheirOwnStore() throws {
    let user = try userWithSubordinateIDs
    let cwd = makeDirectory("session", ownedBy: user)
    let store = user.home + "/.local/share/plash"
    try? FileManager.default.removeItem(atPath: store)
    defer { _ = try? plashAs(user, ["purge", "--yes"], directory: cwd) }
    var transcript = ""
    for arguments in quickStartSession {
        let result = try plashAs(user, arguments, directory: cwd)
        #expect(result.status == 0, "\(arguments): \(result)")
        transcript += result.stdout
    }
    #expect(transcript == quickStartTranscript)
    let attributes = try FileManager.default.attributesOfItem(atPath: store)
    #expect((attributes[.ownerAccountID] as? NSNumber)?.uint32Value == user.uid)
    #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o700)
    #expect(try rootOwnedFiles([store, cwd]) == "")
}

@Test func withoutSubordinateIDsAUserStillBuildsAndRuns() throws {
    let user = try userWithoutSubordinateIDs
    let cwd = makeDirectory("nosub", ownedBy: user)
    let data = cwd + "/store"
    let id = try plashAs(user, ["build", "--from", "busybox", "--run", "echo made > /made"], data: data, directory: cwd)
    #expect(id.stdout == "2\n", "\(id)")
    #expect(try plashAs(user, ["run", "2", "--", "cat", "/made"], data: data, directory: cwd).stdout == "made\n")
    #expect(try rootOwnedFiles([data, cwd]) == "")
}

@Test func filesOfSubordinateIDsInTheStoreAreRemovedByPlashAndPlashSudo() throws {
    let user = try userWithSubordinateIDs
    let cwd = makeDirectory("subids", ownedBy: user)
    let data = cwd + "/store"
    let script = "mkdir /d && touch /d/f && chown -R 1000:1000 /d && chmod 700 /d && cp /bin/busybox /suid && chmod 4755 /suid"
    let built = try plashAs(user, ["build", "--from", "busybox", "--run", script], data: data, directory: cwd)
    #expect(built.stdout == "2\n", "\(built)")
    let node = try plashAs(user, ["nodepath", "2"], data: data, directory: cwd).stdout.trimmingCharacters(in: .newlines)
    // On the host the directory belongs to a subordinate id: the user cannot remove it...
    let owner = try FileManager.default.attributesOfItem(atPath: node + "/_data/d")[.ownerAccountID] as? NSNumber
    #expect(owner?.uint32Value == user.uid * 100_000 + 999)
    #expect(try user.run("/bin/rm", ["-rf", node + "/_data/d"]).status != 0)
    // ... but can inside their user namespace, where it is theirs.
    #expect(try plashAs(user, ["sudo", "ls", node + "/_data/d"], data: data, directory: cwd).stdout == "f\n")
    #expect(try plashAs(user, ["rm", "2"], data: data, directory: cwd).status == 0)
    #expect(!FileManager.default.fileExists(atPath: node))
    #expect(try rootOwnedFiles([data, cwd]) == "")
}

@Test func anOrdinaryUserCannotReachRootsStore() throws {
    let rootStore = TestStore()
    _ = try rootStore.id(["build", "--from", "busybox"])
    let user = try userWithSubordinateIDs
    let cwd = makeDirectory("reach", ownedBy: user)
    let listed = try plashAs(user, ["run", "1", "--", "true"], data: rootStore.data, directory: cwd)
    #expect(listed.status != 0)
    let direct = try user.run(sharedBinaries + "/plash-exec", ["1", "--", "true"], environment: ["PLASH_DATA": rootStore.data],
                              directory: cwd)
    #expect(direct.status == 125)
    #expect(direct.stderr.hasSuffix("Permission denied\n"), "\(direct)")
}

/// From a working directory the image lacks: no mount point lands in a build step's
/// layer or in runb's CHANGESDIR, with or without subordinate ids.
@Test(arguments: ["plash-test-sub", "plash-test-nosub"])
func aBuildStepAndRunbOfAnOrdinaryUserKeepOnlyWhatTheCommandWrote(_ name: String) throws {
    let user = try name == "plash-test-sub" ? userWithSubordinateIDs : userWithoutSubordinateIDs
    let cwd = makeDirectory("writes", ownedBy: user)
    let data = cwd + "/store"
    let built = try plashAs(user, ["build", "--from", "busybox", "--run", "cat /etc/hosts >/dev/null && touch /made"],
                            data: data, directory: cwd)
    #expect(built.stdout == "2\n", "\(built)")
    let node = try plashAs(user, ["nodepath", "2"], data: data, directory: cwd).stdout.trimmingCharacters(in: .newlines)
    #expect(try shell("cd '\(node)/_data' && find . -mindepth 1").stdout == "./made\n")
    let runb = try plashAs(user, ["runb", "1", cwd + "/changes", "sh", "-c", "ls >/dev/null && touch /kept"],
                           data: data, directory: cwd)
    #expect(runb.status == 0, "\(runb)")
    #expect(try shell("cd '\(cwd)/changes' && find . -mindepth 1").stdout == "./kept\n")
}
