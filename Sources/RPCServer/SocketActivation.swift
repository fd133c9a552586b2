import Foundation

/// A listening socket handed over by a service manager (systemd's socket activation, `sd_listen_fds`):
/// the manager owns the socket file and starts the server on the first connection; the server serves
/// the inherited socket instead of binding one.
public enum SocketActivation {
    /// The first inherited descriptor (`SD_LISTEN_FDS_START`).
    public static let firstDescriptor: Int32 = 3

    /// The inherited listening socket: descriptor 3 when `LISTEN_PID` is this process and `LISTEN_FDS`
    /// is 1; nil when the variables are absent or meant for another process. The variables are removed
    /// either way (as `sd_listen_fds(1)` does), so that processes this one starts do not take them for
    /// theirs. Throws when they ask for something this server cannot serve: more than one socket, or a
    /// descriptor that is not a listening Unix stream socket.
    public static func take() throws -> Int32? {
        let env = ProcessInfo.processInfo.environment
        defer { for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] { unsetenv(name) } }
        guard let pidText = env["LISTEN_PID"], let countText = env["LISTEN_FDS"] else { return nil }
        guard let pid = Int32(pidText), pid == getpid() else { return nil }
        guard let count = Int(countText), count >= 1 else {
            throw SocketPath.Refusal(description: "LISTEN_FDS must be a positive number of sockets, got \"\(countText)\"")
        }
        guard count == 1 else {
            throw SocketPath.Refusal(description: "socket activation passed \(count) sockets (LISTEN_FDS); this server serves exactly one")
        }
        let fd = firstDescriptor
        try check(fd)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    /// Throws unless `fd` is a Unix stream socket in the listening state.
    static func check(_ fd: Int32) throws {
        func option(_ name: Int32) -> Int32? {
            var value: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            return getsockopt(fd, SOL_SOCKET, name, &value, &len) == 0 ? value : nil
        }
        guard let domain = option(SO_DOMAIN), let type = option(SO_TYPE), let listening = option(SO_ACCEPTCONN) else {
            throw SocketPath.Refusal(description: "socket activation: descriptor \(fd) is not a socket (\(String(cString: strerror(errno))))")
        }
        guard domain == AF_UNIX, type == Int32(SOCK_STREAM.rawValue) else {
            throw SocketPath.Refusal(description: "socket activation: descriptor \(fd) is not a Unix stream socket "
                                     + "(ListenStream= with a path is what this server serves)")
        }
        guard listening == 1 else {
            throw SocketPath.Refusal(description: "socket activation: descriptor \(fd) is not listening (Accept=no is what this server expects)")
        }
    }

    /// The path a Unix socket is bound to, if any.
    public static func boundPath(_ fd: Int32) -> String? {
        var addr = sockaddr_un()
        var len = socklen_t(MemoryLayout<sockaddr_un>.size)
        let r = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard r == 0 else { return nil }
        let path = withUnsafeBytes(of: &addr.sun_path) { raw -> String in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        return path.isEmpty ? nil : path
    }
}
