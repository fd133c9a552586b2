import Foundation
import RPCServer
import Tensors

/// The daemon's `--state-dir`: where adapters and job checkpoints live, so that nothing learned is lost
/// when the daemon stops or is killed. Created 0700 on first use; every write is atomic (temporary
/// file, fsync, rename: `AtomicFile`), so a file here is always either the old or the new version.
public final class StateDirectory: @unchecked Sendable {
    public let path: String
    private let lock = NSLock()
    private var created = false

    public init(path: String) {
        self.path = path
    }

    /// The directory, created (mode 0700) if missing.
    public func ensure() throws -> URL {
        try lock.withLock {
            if !created {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
                created = true
            }
        }
        return URL(fileURLWithPath: path, isDirectory: true)
    }

    /// Where a file of this name lives (`name` may contain subfolders, which are created).
    public func url(for name: String) throws -> URL {
        guard !name.isEmpty, !name.hasPrefix("/"), !name.split(separator: "/").contains("..") else {
            throw RPCError.invalidParams("state file name \"\(name)\" must be a relative path inside the state directory")
        }
        let url = try ensure().appendingPathComponent(name)
        let parent = url.deletingLastPathComponent()
        if parent.path != path {
            try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
        return url
    }

    /// Replaces the file `name` with `data` atomically and durably (mode 0600).
    public func write(_ name: String, _ data: Data) throws {
        try AtomicFile.write(data, to: url(for: name), permissions: 0o600)
    }
}
