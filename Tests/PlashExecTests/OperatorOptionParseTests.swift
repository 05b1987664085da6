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
