import Foundation

/// The socket file's life outside libuv: its directory (0700), a stale file from a dead daemon
/// (replaced), a live daemon on the same path (never stolen), and the peer-credential check.
public enum SocketPath {
    public struct Refusal: Error, CustomStringConvertible {
        public let description: String
    }

    /// Makes the directory of `path` exist (created 0700; the default location is also checked to be
    /// ours and made 0700) and clears a stale socket file. Throws when a live daemon answers on `path`
    /// or when something that is not a socket is in the way; `server` names the program in that message.
    public static func prepare(_ path: String, isDefault: Bool, server: String) throws {
        let dir = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        try makeDirectory(dir, isDefault: isDefault)

        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw Refusal(description: "cannot inspect \(path): \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw Refusal(description: "\(path) exists and is not a socket; refusing to replace it")
        }
        switch probe(path) {
        case 0:
            throw Refusal(description: "another \(server) is already listening on \(path); stop it first "
                          + "(request shutdown, then exit) or choose another --socket")
        case ECONNREFUSED, ENOENT:
            guard unlink(path) == 0 || errno == ENOENT else {
                throw Refusal(description: "cannot remove the stale socket \(path): \(String(cString: strerror(errno)))")
            }
            Log.info("replaced a stale socket file at \(path) (no daemon was listening)")
        case let e:
            throw Refusal(description: "cannot check whether a daemon listens on \(path): \(String(cString: strerror(e)))")
        }
    }

    /// Throws when a daemon answers on `path` already: checked before anything slow (loading models),
    /// so a second daemon says so at once instead of after it loaded its models.
    public static func refuseIfLive(_ path: String, server: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK, probe(path) == 0 else { return }
        throw Refusal(description: "another \(server) is already listening on \(path); stop it first "
                      + "(request shutdown, then exit) or choose another --socket")
    }

    private static func makeDirectory(_ dir: String, isDefault: Bool) throws {
        var st = stat()
        if stat(dir, &st) != 0 {
            guard errno == ENOENT else {
                throw Refusal(description: "cannot inspect \(dir): \(String(cString: strerror(errno)))")
            }
            let parent = (dir as NSString).deletingLastPathComponent
            if !parent.isEmpty && parent != dir { try makeDirectory(parent, isDefault: false) }
            if mkdir(dir, 0o700) != 0 && errno != EEXIST {
                throw Refusal(description: "cannot create \(dir): \(String(cString: strerror(errno)))")
            }
            chmod(dir, 0o700)
            return
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw Refusal(description: "\(dir) is not a directory")
        }
        if isDefault {
            guard st.st_uid == geteuid() else {
                throw Refusal(description: "\(dir) belongs to uid \(st.st_uid), not to us (uid \(geteuid())); refusing to put the socket there")
            }
            if st.st_mode & 0o077 != 0 { chmod(dir, 0o700) }
        }
    }

    /// Tries to connect: 0 when something accepts, else the errno (ECONNREFUSED for a stale file).
    public static func probe(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return ENAMETOOLONG }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return r == 0 ? 0 : errno
    }

    /// The uid of the process at the other end of a connected Unix socket (SO_PEERCRED), or nil.
    public static func peerUID(fd: Int32) -> uid_t? {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        var cred: (Int32, UInt32, UInt32) = (0, 0, 0)
        var len = socklen_t(MemoryLayout.size(ofValue: cred))
        let r = withUnsafeMutablePointer(to: &cred) { getsockopt(fd, SOL_SOCKET, SO_PEERCRED, $0, &len) }
        guard r == 0, Int(len) == MemoryLayout.size(ofValue: cred) else { return nil }
        return cred.1
    }

    /// Identity of the file at `path` (device, inode, modification time to the nanosecond: inodes are
    /// reused at once), to remove only our own socket at exit.
    public struct FileIdentity: Equatable {
        let dev: UInt64, ino: UInt64, mtimeSec: Int, mtimeNsec: Int
    }

    public static func identity(_ path: String) -> FileIdentity? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return FileIdentity(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino),
                            mtimeSec: Int(st.st_mtim.tv_sec), mtimeNsec: Int(st.st_mtim.tv_nsec))
    }

    /// True when the peer of this socket has fully closed (not just shut down its writing side).
    public static func peerHungUp(fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&p, 1, 0) >= 0 else { return true }
        return p.revents & Int16(POLLHUP | POLLERR) != 0
    }
}
