import Foundation
import Testing
import PlashTestSupport

// What systemd gives the program it starts reaches it inside the container: the
// readiness socket ($NOTIFY_SOCKET) and socket activation (fds from 3, $LISTEN_*).
// The manager's side is played by the test's own datagram socket and by
// systemd-socket-activate; Tests/vm/systemd.sh does the same under a real systemd.

/// The test's own notify socket, as systemd's: a datagram socket with SO_PASSCRED, so
/// that each message comes with the sender's PID (systemd accepts READY=1 from the
/// service's main PID only, unless NotifyAccess=all).
final class NotifyListener {
    let address: String      // for NOTIFY_SOCKET: a path, or @NAME for an abstract socket
    private let fd: Int32

    init(abstract: Bool = false) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw SetupError("socket: \(String(cString: strerror(errno)))") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        address = abstract ? "@plash-test-notify-\(getpid())-\(UUID().uuidString.prefix(8))" : makeDirectory("notify") + "/notify"
        var name = sockaddr_un()
        name.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(address.utf8)
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &name.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let bound = withUnsafePointer(to: &name) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { throw SetupError("bind \(address): \(String(cString: strerror(errno)))") }
        if !abstract { chmod(address, 0o777) }   // an ordinary user's container sends too
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, 16 /* SO_PASSCRED */, &on, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(fd)
        if !address.hasPrefix("@") { unlink(address) }
    }

    /// The next message and its sender's PID, nil when none came within 10 s.
    func receive() -> (text: String, pid: pid_t)? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        // One SCM_CREDENTIALS message: a cmsghdr (16 bytes) and a struct ucred (12).
        var control = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { data in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: data.baseAddress, iov_len: data.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    message.msg_control = controlBytes.baseAddress
                    message.msg_controllen = controlBytes.count
                    return recvmsg(fd, &message, 0)
                }
            }
        }
        guard count >= 0 else { return nil }
        let pid = control.withUnsafeBytes { $0.load(fromByteOffset: 16, as: pid_t.self) }
        return (String(decoding: buffer[0..<count], as: UTF8.self), pid)
    }
}

@Test func aProgramInPlaceReportsReadyToTheNotifySocketAsTheMainPID() throws {
    let listener = try NotifyListener()
    let child = try Child(plashExec, ["--root", probeRoot, "--", "probe", "notify", "READY=1"],
                          environment: ["NOTIFY_SOCKET": listener.address])
    let message = listener.receive()
    let finished = child.finish()
    #expect(finished.status == 0, "\(finished)")
    #expect(message?.text == "READY=1")
    // The PID the manager started sent it: systemd's default NotifyAccess=main accepts it.
    #expect(message?.pid == child.pid)
}

@Test func anIsolatedContainerReachesTheNotifySocketThroughItsFile() throws {
    // The socket lies in /var/tmp, which no container shares: only the bind of the
    // socket file itself reaches it.
    let listener = try NotifyListener()
    let result = try exec(["--isolate", "--root", probeRoot, "--", "probe", "notify", "READY=1"],
                          environment: ["NOTIFY_SOCKET": listener.address])
    #expect(result.status == 0, "\(result)")
    #expect(listener.receive()?.text == "READY=1")
}

@Test func anOrdinaryUsersContainerReachesTheNotifySocket() throws {
    let user = try userWithSubordinateIDs
    let listener = try NotifyListener()
    let result = try user.run(userExec, ["--root", try userRoot(user), "--", "probe", "notify", "READY=1"],
                              environment: ["NOTIFY_SOCKET": listener.address])
    #expect(result.status == 0, "\(result)")
    #expect(listener.receive()?.text == "READY=1")
}

@Test func anOrdinaryUsersIsolatedContainerReachesTheNotifySocket() throws {
    let user = try userWithSubordinateIDs
    let listener = try NotifyListener()
    let result = try user.run(userExec, ["--isolate", "--root", try userRoot(user), "--", "probe", "notify", "READY=1"],
                              environment: ["NOTIFY_SOCKET": listener.address])
    #expect(result.status == 0, "\(result)")
    #expect(listener.receive()?.text == "READY=1")
}

@Test func anAbstractNotifySocketIsReachedFromTheHostsNetworkNamespace() throws {
    let listener = try NotifyListener(abstract: true)
    let result = try exec(["--pid-ns", "--root", probeRoot, "--", "probe", "notify", "READY=1"],
                          environment: ["NOTIFY_SOCKET": listener.address])
    #expect(result.status == 0, "\(result)")
    #expect(listener.receive()?.text == "READY=1")
}

@Test func anAbstractNotifySocketWithTheContainersOwnNetworkIsRefusedBeforeTheProgramRuns() throws {
    let listener = try NotifyListener(abstract: true)
    let marker = makeDirectory("ran") + "/ran"
    let result = try exec(["--net", "none", "--bind", splitDirectory(marker) + ":/ran", "--root", probeRoot, "--",
                           "sh", "-c", "touch /ran/ran; probe notify READY=1"],
                          environment: ["NOTIFY_SOCKET": listener.address])
    #expect(result.status == 125, "\(result)")
    #expect(result.stderr.split(separator: "\n").count == 1, "\(result)")
    #expect(!FileManager.default.fileExists(atPath: marker))
}

@Test func aNotifySocketThatIsNotASocketIsRefused() throws {
    let file = makeDirectory("notify") + "/notify"
    try "".write(toFile: file, atomically: false, encoding: .utf8)
    let result = try exec(["--root", probeRoot, "--", "true"], environment: ["NOTIFY_SOCKET": file])
    #expect(result.status == 125, "\(result)")
    #expect(result.stderr.split(separator: "\n").count == 1, "\(result)")
}

func splitDirectory(_ path: String) -> String { (path as NSString).deletingLastPathComponent }

/// systemd-socket-activate listening on a reserved port of 127.0.0.1 and starting
/// plash-exec ARGUMENTS on the first connection; the answer to that connection.
func socketActivated(_ arguments: [String]) throws -> (answer: String?, child: Child) {
    let reserved = try ReservedPort(), port = reserved.port
    let child = try Child("/usr/bin/systemd-socket-activate", ["-l", "127.0.0.1:\(port)", "--fdname=web", plashExec] + arguments)
    var answer: String?
    waitUntil(10) {
        answer = plainAnswer(port: port)
        return answer != nil || !isAlive(child.pid)
    }
    withExtendedLifetime(reserved) {}
    if answer == nil { kill(child.pid, SIGKILL) }   // a server that never got the connection
    return (answer, child)
}

/// What a TCP server on 127.0.0.1:PORT writes before closing, nil when nothing answered.
func plainAnswer(port: Int) -> String? {
    guard let fd = connectToLoopback(port: port, seconds: 5) else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = read(fd, &buffer, buffer.count)
    return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : nil
}

@Test func aSocketActivatedServerInPlaceAcceptsOnTheSocketItsManagerOpened() throws {
    let (answer, child) = try socketActivated(["--root", probeRoot, "--", "probe", "listen", "hello"])
    let finished = child.finish()
    #expect(finished.status == 0, "\(finished)")
    // LISTEN_PID is right as it was: the program is the PID systemd-socket-activate execs.
    #expect(answer == "hello pid \(child.pid) fds 1 names web\n", "\(finished)")
}

@Test func withItsOwnPIDNamespaceLISTEN_PIDNamesTheProgramInside() throws {
    let (answer, child) = try socketActivated(["--pid-ns", "--root", probeRoot, "--", "probe", "listen", "hello"])
    let finished = child.finish()
    #expect(finished.status == 0, "\(finished)")
    #expect(answer == "hello pid 2 fds 1 names web\n", "\(finished)")
}

@Test func anIsolatedSocketActivatedServerAcceptsOnTheSocketItsManagerOpened() throws {
    let (answer, child) = try socketActivated(["--isolate", "--root", probeRoot, "--", "probe", "listen", "hello"])
    let finished = child.finish()
    #expect(finished.status == 0, "\(finished)")
    #expect(answer == "hello pid 2 fds 1 names web\n", "\(finished)")
}
