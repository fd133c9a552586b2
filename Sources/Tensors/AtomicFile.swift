#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Crash-safe replacement of a file: after `write` returns, the file holds exactly the new bytes, and
/// if the process or machine dies at any point before, it holds exactly the old ones (or is still
/// absent). Checkpoints and saved adapters go through this.
///
/// The bytes go to a fresh temporary file in the destination's directory, which is fsynced and then
/// renamed over the destination; the directory is fsynced so that the rename itself is durable. On
/// any error the temporary file is removed and the destination is untouched. A destination that is a
/// symbolic link is replaced by the new file (the link's target is not written).
public enum AtomicFile {
    /// Sequential output into the temporary file, buffered.
    public struct Writer {
        fileprivate let fd: Int32
        fileprivate let path: String
        fileprivate var buffer: UnsafeMutableRawBufferPointer
        fileprivate var used = 0

        /// Bytes written so far.
        public private(set) var byteCount = 0

        /// Appends `bytes`.
        public mutating func write(_ bytes: UnsafeRawBufferPointer) throws {
            guard bytes.count > 0 else { return }
            byteCount += bytes.count
            if used + bytes.count <= buffer.count {
                UnsafeMutableRawBufferPointer(rebasing: buffer[used...]).copyMemory(from: bytes)
                used += bytes.count
                return
            }
            try flush()
            if bytes.count >= buffer.count {
                try AtomicFile.writeAll(fd, bytes, path: path)
            } else {
                buffer.copyMemory(from: bytes)
                used = bytes.count
            }
        }

        /// Appends the bytes of `data`.
        public mutating func write(_ data: Data) throws {
            try data.withUnsafeBytes { try write($0) }
        }

        /// Appends `count` copies of `byte`.
        public mutating func write(repeating byte: UInt8, count: Int) throws {
            let chunk = [UInt8](repeating: byte, count: min(count, 4096))
            var left = count
            while left > 0 {
                let n = min(left, chunk.count)
                try chunk.withUnsafeBytes { try write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                left -= n
            }
        }

        fileprivate mutating func flush() throws {
            if used > 0 { try AtomicFile.writeAll(fd, UnsafeRawBufferPointer(rebasing: buffer[0..<used]), path: path) }
            used = 0
        }
    }

    /// Replaces the file at `url` with what `body` writes, atomically and durably.
    public static func write(to url: URL, permissions: mode_t = 0o644,
                             _ body: (inout Writer) throws -> Void) throws {
        let path = url.path
        let directory = url.deletingLastPathComponent().path
        let temp = directory + "/." + url.lastPathComponent + ".\(getpid()).\(String(UInt64.random(in: 0...UInt64.max), radix: 36)).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions)
        if fd < 0 { throw AtomicFileError(path: path, operation: "create temporary file \(temp)", code: errno) }
        var closed = false
        var renamed = false
        defer {
            if !closed { close(fd) }
            if !renamed { unlink(temp) }
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { buffer.deallocate() }
        var writer = Writer(fd: fd, path: temp, buffer: buffer)
        try body(&writer)
        try writer.flush()
        if fsync(fd) != 0 { throw AtomicFileError(path: path, operation: "fsync \(temp)", code: errno) }
        closed = true
        if close(fd) != 0 { throw AtomicFileError(path: path, operation: "close \(temp)", code: errno) }
        if rename(temp, path) != 0 { throw AtomicFileError(path: path, operation: "rename \(temp) to it", code: errno) }
        renamed = true
        try syncDirectory(directory, for: path)
    }

    /// Replaces the file at `url` with `data`, atomically and durably.
    public static func write(_ data: Data, to url: URL, permissions: mode_t = 0o644) throws {
        try write(to: url, permissions: permissions) { try $0.write(data) }
    }

    /// Makes a rename inside `directory` durable. File systems that cannot fsync a directory
    /// (EINVAL) are accepted: there the rename is as durable as it gets.
    private static func syncDirectory(_ directory: String, for path: String) throws {
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd < 0 { throw AtomicFileError(path: path, operation: "open directory \(directory)", code: errno) }
        defer { close(dfd) }
        if fsync(dfd) != 0 && errno != EINVAL {
            throw AtomicFileError(path: path, operation: "fsync directory \(directory)", code: errno)
        }
    }

    fileprivate static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var done = 0
        while done < bytes.count {
            #if canImport(Glibc)
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            #else
            let n = Darwin.write(fd, bytes.baseAddress! + done, bytes.count - done)
            #endif
            if n < 0 {
                if errno == EINTR { continue }
                throw AtomicFileError(path: path, operation: "write", code: errno)
            }
            done += n
        }
    }
}

/// A failed step of `AtomicFile.write`, naming the destination, the step and the system error.
public struct AtomicFileError: Error, CustomStringConvertible, LocalizedError, Sendable {
    /// The file that was being replaced.
    public let path: String
    /// The step that failed.
    public let operation: String
    /// `errno` of the failure.
    public let code: Int32

    public var description: String { "cannot write \(path): \(operation) failed: \(String(cString: strerror(code)))" }
    public var errorDescription: String? { description }
}
