import Foundation
import Testing
@testable import PlashExec
import PlashSystem
import PlashTestSupport

func plan(_ arguments: [String]) throws -> ExecPlan {
    guard case .run(let plan) = try parse(arguments) else { throw PlashError.usage("not a run") }
    return plan
}

@Test func rootAndCommandAfterDoubleDash() throws {
    let p = try plan(["--root", "/r", "--", "ls", "-l"])
    #expect(p.image == .root("/r"))
    #expect(p.command == ["ls", "-l"])
}

@Test func lowersKeepTheirOrderTopFirst() throws {
    #expect(try plan(["--lower", "/a", "--lower=/b", "true"]).image == .lowers(["/a", "/b"]))
}

@Test func theFirstWordIsAnImageWhenNoRootIsGiven() throws {
    let p = try plan(["--no-tmp", "myimage", "echo", "hi"])
    #expect(p.image == .stored("myimage"))
    #expect(p.command == ["echo", "hi"])
    #expect(!p.shareTmp)
}

@Test func anOptionAfterTheImageIsRefusedAndEveryOtherWordThereIsTheCommand() throws {
    // As docs/plash-exec.md says and plash run does: options go before the image.
    for arguments in [["2", "--memory", "1G", "true"], ["2", "--memory=1G"], ["2", "--no-tmp"], ["2", "--root", "/r"]] {
        #expect(throws: PlashError.self, "\(arguments)") { try parse(arguments) }
    }
    #expect(try plan(["--no-tmp", "2", "--", "--memory"]).command == ["--memory"])
    #expect(try plan(["2", "--help"]).command == ["--help"])
    #expect(try plan(["2", "-x", "--memory"]).command == ["-x", "--memory"])
}

@Test func withoutACommandOrAnImageConfigNoProgramIsNamedAndTheShellRuns() throws {
    let p = try plan(["--root", "/r"])
    #expect(p.command == [])
    #expect(programArguments(p, image: nil) == nil)
    #expect(programArguments(p, image: RunConfig(environment: ["A=1"])) == nil)
}

@Test func theImagesEntrypointAndCmdFollowPodmansRules() throws {
    let image = RunConfig(entrypoint: ["/entry", "-x"], command: ["serve"])
    #expect(programArguments(try plan(["img"]), image: image) == ["/entry", "-x", "serve"])
    #expect(programArguments(try plan(["img", "status"]), image: image) == ["/entry", "-x", "status"])
    #expect(programArguments(try plan(["--entrypoint", "/other", "img"]), image: image) == ["/other"])
    #expect(programArguments(try plan(["--entrypoint", "/other", "img", "a"]), image: image) == ["/other", "a"])
    #expect(programArguments(try plan(["--entrypoint", "", "img", "ls"]), image: image) == ["ls"])
    #expect(programArguments(try plan(["img"]), image: RunConfig(command: ["/bin/app"])) == ["/bin/app"])
}

@Test func theImagesUserIsTheDefaultOfUser() throws {
    let image = RunConfig(user: "app")
    #expect(withImageUser(try plan(["img"]), image: image).user == "app")
    #expect(withImageUser(try plan(["--user", "0", "img"]), image: image).user == "0")
}

@Test func theImagesEnvComesBeforeWhatTheCallerNames() throws {
    let p = try plan(["--root", "/r", "--env", "A=mine"])
    let caller = ["TERM": "xterm", "HOME": "/root", "PLASH_EXPORT": "B", "B": "caller"]
    let env = containerEnvironment(p, image: ["PATH=/app:/bin", "A=image", "B=image", "HOME=/srv"], caller: { caller[$0] })
    #expect(env == ["PATH=/app:/bin", "TERM=xterm", "HOME=/srv", "A=mine", "B=caller"])
}

@Test func aRunConfigReadsBackAsWritten() throws {
    let config = RunConfig(environment: ["A=1", "B=two words", "C="], entrypoint: [], command: ["sh", "-c", "echo \"$A\"\n"],
                           user: "1000:1000", workingDirectory: "/srv")
    #expect(RunConfig(decoding: config.encoded) == config)
    #expect(RunConfig(decoding: RunConfig().encoded) == RunConfig())
    #expect(RunConfig(decoding: Array("env\u{0}3\u{0}A=1\u{0}".utf8)) == nil)
    #expect(RunConfig(decoding: Array("cmd\u{0}1\u{0}x".utf8)) == nil)
}

@Test func bindTakesAnOptionalDestination() throws {
    let p = try plan(["--bind", "/src", "--ro-bind", "/a:/b", "--root", "/r"])
    #expect(p.binds == [Bind("/src", "/src"), Bind("/a", "/b", readOnly: true)])
}

@Test func optionsAfterTheCommandBelongToTheCommand() throws {
    #expect(try plan(["--root", "/r", "ls", "--help"]).command == ["ls", "--help"])
}

@Test func badCommandLinesAreUsageErrors() {
    for arguments in [["--frob", "--root", "/r"], ["--root"], [], ["--root", "/r", "--lower", "/l"],
                      ["--bind", "/a:rel", "--root", "/r"], ["--net", "bridge", "--root", "/r"],
                      ["--cwd", "rel", "--root", "/r"], ["--env", "=x", "--root", "/r"]] {
        #expect(throws: PlashError.self, "\(arguments)") { try parse(arguments) }
    }
}

@Test func helpAndVersionWin() throws {
    #expect(try parse(["--root", "/r", "--help"]) == .help)
    #expect(try parse(["--version"]) == .version)
}

@Test func theEnvironmentIsCleanExceptWhatIsNamed() throws {
    var p = try plan(["--root", "/r", "--env", "A=1", "--env", "B", "--env", "PATH=/x"])
    p.environment.append("A=2")
    let caller = ["TERM": "xterm", "HOME": "/root", "B": "b", "SECRET": "s", "PLASH_EXPORT": "C:D", "C": "c", "DISPLAY": ":1"]
    let env = containerEnvironment(p, caller: { caller[$0] })
    #expect(env == ["PATH=/x", "TERM=xterm", "HOME=/root", "DISPLAY=:1", "C=c", "A=2", "B=b"])
}

@Test func sharedMountsGoParentsFirstAndSkipWhatIsCovered() throws {
    let p = try plan(["--root", "/r", "--bind", "/data:/mnt"])
    let mounts = sharedMounts(p, home: "/home/me", callerDirectory: "/home/me/project", hostHas: { _ in true })
    #expect(mounts.map(\.destination) == ["/proc", "/dev", "/sys", "/tmp", "/home",
                                          "/etc/resolv.conf", "/etc/hosts", "/mnt"])
}

@Test func aHomeOutsideHomeAndTheCallersDirectoryAreShared() throws {
    let p = try plan(["--root", "/r"])
    let mounts = sharedMounts(p, home: "/root", callerDirectory: "/srv/app", hostHas: { $0 != "/etc/hosts" })
    #expect(mounts.map(\.destination) == ["/proc", "/dev", "/sys", "/tmp", "/home", "/root", "/srv/app",
                                          "/etc/resolv.conf"])
    #expect(mounts.first { $0.destination == "/srv/app" }?.onlyWhereImageHasNone == true)
}

@Test func noHomeAndNoTmpShareNeitherNorACallerDirectoryInThem() throws {
    let p = try plan(["--no-home", "--no-tmp", "--root", "/r"])
    let mounts = sharedMounts(p, home: "/root", callerDirectory: "/root/src", hostHas: { _ in true })
    #expect(mounts.map(\.destination) == ["/proc", "/dev", "/sys", "/etc/resolv.conf", "/etc/hosts"])
}

@Test func roShareSharesHomeEntryByEntryHomeAndTheCallersDirectoryReadOnlyWhereTheImageHasNone() throws {
    let p = try plan(["--no-tmp", "--ro-share", "--root", "/r"])
    let mounts = sharedMounts(p, home: "/srv/me", callerDirectory: "/tmp/src", hostHas: { _ in true },
                              hostEntries: { $0 == "/home" ? ["bob", "alice"] : [] })
    #expect(mounts.map(\.destination) == ["/proc", "/dev", "/sys", "/home/alice", "/home/bob", "/srv/me", "/tmp/src",
                                          "/etc/resolv.conf", "/etc/hosts"])
    let shared = mounts.filter { ["/home/alice", "/home/bob", "/srv/me", "/tmp/src"].contains($0.destination) }
    #expect(shared.allSatisfy { $0.readOnly && $0.onlyWhereImageHasNone })
    // An entry gone (or misread) since /home was listed is skipped, not a failure.
    #expect(shared.filter(\.optional).map(\.destination) == ["/home/alice", "/home/bob"])
}

@Test func roShareDoesNotShareADirectoryInAHomeThatNoHomeKeepsOut() throws {
    let p = try plan(["--no-home", "--ro-share", "--root", "/r"])
    let mounts = sharedMounts(p, home: "/home/me", callerDirectory: "/home/me/src", hostHas: { _ in true },
                              hostEntries: { _ in ["me"] })
    #expect(mounts.map(\.destination) == ["/proc", "/dev", "/sys", "/tmp", "/etc/resolv.conf", "/etc/hosts"])
}

@Test func storeLayersAreTheFilesOfTheNodesPathComponentsTopFirst() throws {
    let store = makeDirectory()
    #expect(try shell("mkdir -p '\(store)/files/1' '\(store)/files/2' '\(store)/layer/0/1/2'").status == 0)
    #expect(StoreLayout(path: store).layers(of: store + "/layer/0/1/2") == [store + "/files/2", store + "/files/1"])
}

@Test func aStoreOfAnOlderPlashKeepsTheFilesOfItsLayersInTheirNodes() {
    #expect(StoreLayout(path: "/s").layers(of: "/s/layer/0/1/2") == ["/s/layer/0/1/2/_data", "/s/layer/0/1/_data"])
}

/// A descriptor that is open, as --error-fd requires (its 3 need not be, under every runner).
let openDescriptor = open("/dev/null", O_RDONLY | O_CLOEXEC)

/// A value each option of the table accepts.
func sampleValue(_ option: ExecOption) -> [String] {
    guard option.takesValue else { return [] }
    return [["--cgroup": "c", "--memory": "1M", "--pids": "1", "--cpus": "1", "--net": "none", "--cwd": "/",
             "--bind": "/a", "--ro-bind": "/a", "--bind-try": "/a", "--tmpfs": "/t", "--hostname": "h",
             "--env-file": "/dev/null", "--cap-drop": "chown", "--cap-add": "chown", "--error-fd": String(openDescriptor)][option.name] ?? "x"]
}

@Test func everyOptionOfTheTableParsesAndHasItsRowInTheHelp() throws {
    for option in execOptions {
        var arguments = [option.name] + sampleValue(option)
        if option.name != "--root" && option.name != "--lower" { arguments += ["--root", "/r"] }
        #expect(throws: Never.self, "\(option.name)") { try parse(arguments) }
        let row = "  " + option.name + (option.value.map { " " + $0 } ?? "") + " "
        #expect(usage.contains(row + " ") && usage.contains(option.help[0]), "\(option.name) in --help")
    }
}

@Test func theHelpListsEveryOptionOnceAndFitsEightyColumns() {
    for option in execOptions {
        #expect(usage.components(separatedBy: "\n  \(option.name) ").count == 2, "\(option.name)")
    }
    for line in usage.split(separator: "\n") { #expect(line.count <= 80, "\(line)") }
}

@Test func theManualDescribesEveryOption() throws {
    let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/plash-exec.md")
    let manual = try String(contentsOf: docs, encoding: .utf8)
    for option in execOptions { #expect(manual.contains("`\(option.name)"), "\(option.name)") }
}

@Test func anOptionWithoutAValueRefusesOne() {
    for option in execOptions where !option.takesValue {
        #expect(throws: PlashError.self, "\(option.name)") { try parse(["\(option.name)=yes", "--root", "/r"]) }
    }
}

@Test func theImageIsNamedOnce() {
    for arguments in [["--root", "/a", "--root", "/b"], ["--root", "/a", "--lower", "/b"], ["--lower", "/a", "--root", "/b"],
                      ["img", "--root", "/b"]] {
        #expect(throws: PlashError.self, "\(arguments)") { try parse(arguments) }
    }
}

@Test func aMemoryLimitBelowOneMegabyteIsRefusedNamingTheMinimum() throws {
    for size in ["1", "100", "1048575", "512K", "0"] {
        #expect { try parse(["--memory", size, "--root", "/r"]) } throws: { error in
            "\(error)".contains("1M") && (error as? PlashError)?.kind == .usage
        }
    }
    #expect(try plan(["--memory", "1048576", "--root", "/r"]).limits.memory == 1 << 20)
    #expect(try plan(["--memory", "1M", "--root", "/r"]).limits.memory == 1 << 20)
}

@Test func aMemoryLimitMayHaveAFractionOfItsUnitAsDockersDoes() throws {
    #expect(try plan(["--memory", "1.5G", "--root", "/r"]).limits.memory == 3 << 29)
    #expect(throws: PlashError.self) { try parse(["--memory", "0.5M", "--root", "/r"]) }
    #expect(parseSize("2.5K") == 2560)
    #expect(parseSize("1.000001T") == (1 << 40) + (1 << 40) / 1_000_000)
    // Bytes are whole; a fraction needs digits on both sides; too many digits, no number.
    for text in ["1.5", "1.G", ".5G", "1.5.5G", "1.-5G", "1.+5G", "1.1234567G", "1,5G", "16777216.5T"] {
        #expect(parseSize(text) == nil, "\(text)")
    }
}

@Test func netHostIsTheDefaultAndNetNoneTheOnlyOther() throws {
    #expect(try plan(["--net", "host", "--root", "/r"]).isolateNetwork == false)
    #expect(try plan(["--net", "none", "--net", "host", "--root", "/r"]).isolateNetwork == false)
    #expect(try plan(["--net", "none", "--root", "/r"]).isolateNetwork == true)
}

@Test func aCgroupNameThatPlashKillCouldNotNameIsRefused() throws {
    // An option to kill (`-x`, `--`) or a PID or an image id to it (`0`, `123`).
    for name in ["-x", "--", "0", "123", ".", "..", "_a", "a/b", "a\nb", ""] {
        #expect(throws: PlashError.self, "\(name.debugDescription)") { try parse(["--cgroup", name, "--root", "/r"]) }
    }
    for name in ["web", "0a", "web-1.2_x", "A"] { #expect(try plan(["--cgroup", name, "--root", "/r"]).cgroup == name) }
}

@Test func aHostnameWithANewlineASlashOrASpaceIsRefused() throws {
    for name in ["a\nb", "a/b", "a b", "-h", ".a", "", String(repeating: "a", count: 65)] {
        #expect(throws: PlashError.self, "\(name.debugDescription)") { try parse(["--hostname", name, "--root", "/r"]) }
    }
    for name in ["box", "web-1.example.org", "a_b", String(repeating: "a", count: 64)] {
        #expect(try plan(["--hostname", name, "--root", "/r"]).hostname == name)
    }
}

@Test func cpusTakesOnlyADecimalNumber() throws {
    for cpus in ["0x1", "1e1", "inf", "nan", "+1", "-1", ".", "1.2.3", " 1", ""] {
        #expect(throws: PlashError.self, "\(cpus)") { try parse(["--cpus", cpus, "--root", "/r"]) }
    }
    for (text, cpus) in [("0.5", 0.5), ("2", 2.0), (".25", 0.25), ("1.", 1.0)] {
        #expect(try plan(["--cpus", text, "--root", "/r"]).limits.cpus == cpus)
    }
}

/// argv -> plan -> argv -> plan: the table gives every plan back that it parses.
func expectRoundTrip(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
    let first = try plan(arguments)
    let words = execArguments(first)
    #expect(try plan(words) == first, "\(arguments) -> \(words)", sourceLocation: sourceLocation)
}

@Test func everyOptionOfTheTableComesBackFromThePlanItMade() throws {
    for option in execOptions {
        let image = option.name == "--root" || option.name == "--lower" ? [] : ["--root", "/r"]
        let arguments = [option.name] + sampleValue(option) + image + ["--", "ls", "-l"]
        try expectRoundTrip(arguments)
        // And each changes the plan, so the round trip above did not hold by defaults alone.
        if !image.isEmpty && option.name != "--env-file" {
            #expect(try plan(arguments) != plan(image + ["--", "ls", "-l"]), "\(option.name)")
        }
    }
}

@Test func allOptionsTogetherComeBackInOnePlan() throws {
    var arguments: [String] = []
    for option in execOptions where option.name != "--root" && option.name != "--lower" {
        arguments += [option.name] + sampleValue(option)
    }
    try expectRoundTrip(arguments + ["img", "--", "sh", "-c", "echo $0", "--"])
    try expectRoundTrip(["--lower", "/a", "--lower", "/b", "--env", "A=1", "--env", "B", "--env", "A=2"])
}

@Test func bindsOfEveryKindComeBackInTheirOrder() throws {
    // A bind on a tmpfs only works after it: the order is part of the plan.
    try expectRoundTrip(["--tmpfs", "/t", "--bind", "/a:/t/a", "--ro-bind", "/b", "--bind-try", "/c:/t/c:d",
                         "--bind", "/e", "--tmpfs", "/t/e", "img"])
}

@Test func valuesComeBackAsParseReadsThem() throws {
    try expectRoundTrip(["--cpus", "0.25", "--memory", "1G", "--cap-drop", "ALL", "--cap-add", "NET_RAW",
                         "--cap-add", "cap_chown", "--entrypoint", "", "--env=X=a=b", "--isolate", "img"])
    try expectRoundTrip(["--cpus", "3", "--cap-drop", "net_raw", "--cap-drop", "chown", "--isolate", "--seccomp", "/p.json",
                         "--entrypoint", "/bin/x", "img"])
    let env = makeDirectory() + "/env"
    try "A=1\n# c\n\nB\n".write(toFile: env, atomically: true, encoding: .utf8)
    try expectRoundTrip(["--env-file", env, "--env", "C=3", "img"])
    #expect(execArguments(try plan(["--env-file", env, "img"])) == ["--env", "A=1", "--env", "B", "img"])
}

@Test func aPlanFoundByItsCallerGoesToArgvAsItsId() {
    var plan = ExecPlan(image: .resolved(id: 7, node: "/s/layer/0/7", store: "/s"))
    plan.command = ["ls"]
    #expect(execArguments(plan) == ["7", "--", "ls"])
}
