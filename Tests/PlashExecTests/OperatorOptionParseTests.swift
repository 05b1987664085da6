import Testing
@testable import PlashExec
import PlashSystem

// The options operators reach for first, as plans: what Tests/ShimTests/OperatorOptionTests.swift
// proves from inside a container.

@Test func capabilityNamesAreTakenWithOrWithoutCapAndInAnyCase() throws {
    let p = try plan(["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE", "--cap-add", "cap_chown", "--root", "/r"])
    #expect(p.dropCapabilities == ~0 && p.addCapabilities == (1 << 10 | 1 << 0))
    #expect(throws: PlashError.self) { try plan(["--cap-drop", "net_rawx", "--root", "/r"]) }
}

@Test func isolateImpliesOwnIPCAndDevAndItsCapabilities() throws {
    let p = try plan(["--isolate", "--cap-drop", "chown", "--root", "/r"])
    #expect(p.unshareIPC && p.minimalDev)
    #expect(keptCapabilities(p) == packageManagerCapabilities.filter { $0 != 0 }.reduce(0) { $0 | 1 << UInt64($1) })
    #expect(keptCapabilities(try plan(["--root", "/r"])) == nil)
}

@Test func userResolvesNamesUIDsAndGroupsInTheImagesFiles() throws {
    let passwd = "root:x:0:0:root:/root:/bin/sh\nweb:x:33:33:web:/var/www:/bin/sh\n"
    let group = "root:x:0:\nweb:x:33:\naudio:x:29:web,other\nstaff:x:50:other\n"
    #expect(try resolveUser("web", passwd: passwd, group: group) == Identity(uid: 33, gid: 33, groups: [33, 29], home: "/var/www"))
    #expect(try resolveUser("33:staff", passwd: passwd, group: group) == Identity(uid: 33, gid: 50, groups: [50, 29], home: "/var/www"))
    #expect(try resolveUser("1234", passwd: passwd, group: group) == Identity(uid: 1234, gid: 1234, groups: [1234]))
    #expect(throws: PlashError.self) { try resolveUser("web:nogroup", passwd: passwd, group: group) }
    #expect(throws: PlashError.self) { try plan(["--user", "web:", "--root", "/r"]) }
}

@Test func aPasswdLineWithoutNumericIdsOrItsFirstFourFieldsIsNoEntry() {
    let text = "root:x:0:0:root:/root:/bin/bash\nbroken\nweb:x:33\nodd:x:a:1::/:/bin/sh\nshort:x:5:6\n"
    let entries = PasswdEntry.parse(text)
    #expect(entries.map(\.name) == ["root", "short"])
    #expect(entries.map(\.uid) == [0, 5] && entries.map(\.gid) == [0, 6])
    #expect(entries.map(\.home) == ["/root", ""] && entries.map(\.shell) == ["/bin/bash", ""])
    let groups = GroupEntry.parse("audio:x:29:web,other\nbad:x\nx:x:y:\nnone:x:7:\n")
    #expect(groups.map(\.name) == ["audio", "none"] && groups.map(\.gid) == [29, 7])
    #expect(groups.map(\.members) == [["web", "other"], []])
}

@Test func aUserWhoseLineIsBrokenIsNotFoundByName() throws {
    #expect(throws: PlashError.self) { try resolveUser("web", passwd: "web:x:33\n", group: "") }
    #expect(try resolveUser("33", passwd: "web:x:33\n", group: "") == Identity(uid: 33, gid: 33, groups: [33]))
}
