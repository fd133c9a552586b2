import Foundation
import RPCServer

/// What the daemon may read and write at paths its clients name. One daemon serves every tool of a
/// user, so a careless path must not cost anyone a file or wedge the worker:
///
/// - It reads only regular files (a FIFO would block the only worker in `open`, a device could be
///   endless); the check comes before the job is queued, and files are opened non-blocking.
/// - It writes only regular files, through `AtomicFile` (a temporary file renamed into place, so it
///   never writes *through* whatever is at the path). It refuses a path that is a symbolic link or
///   anything but a regular file, even with `overwrite`; it replaces an existing file only if erudiff
///   wrote it (an adapter with `erudiff.steps` in its metadata, a PNG with erudiff's `Software` text)
///   or the request says `overwrite: true`; and it refuses paths with `..` components, which may lead
///   somewhere other than they seem (through links).
enum FileChecks {
    /// What erudiff writes, and how it recognises its own files.
    enum Kind {
        case adapter
        case png

        var noun: String { self == .adapter ? "an adapter" : "a PNG" }
    }

    /// The `Software` text of the PNG files erudiff writes.
    static let pngSoftware = "erudiffd"

    /// Checks `path` (parameter `name`, already absolute) before anything reads it: a regular file
    /// (through links), else `-32602` saying what it is.
    static func readable(_ path: String, name: String = "path") throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw RPCError.invalidParams("\"\(name)\" \(path) cannot be read: \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw RPCError.invalidParams("\"\(name)\" \(path) is not a regular file (it is \(describe(st.st_mode))); "
                                        + "erudiffd reads only regular files")
        }
    }

    /// Checks `path` (parameter `name`, already absolute) before writing `kind` there; `-32602` naming
    /// the problem and, for a foreign file, the way to replace it anyway.
    static func writable(_ path: String, name: String = "path", kind: Kind, overwrite: Bool) throws {
        if path.split(separator: "/").contains("..") {
            throw RPCError.invalidParams("\"\(name)\" \(path) contains '..'; give the path it is meant to reach "
                                         + "(erudiffd does not follow '..' through links into other folders)")
        }
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw RPCError.invalidParams("\"\(name)\" \(path) cannot be inspected: \(String(cString: strerror(errno)))")
        }
        let type = st.st_mode & S_IFMT
        if type == S_IFLNK {
            throw RPCError.invalidParams("\"\(name)\" \(path) is a symbolic link; erudiffd writes neither through nor over "
                                         + "links: give the file's real path or remove the link")
        }
        guard type == S_IFREG else {
            throw RPCError.invalidParams("\"\(name)\" \(path) is not a regular file (it is \(describe(st.st_mode))); "
                                         + "erudiffd writes only regular files, even with \"overwrite\"")
        }
        guard !overwrite else { return }
        let ours: Bool
        switch kind {
        case .adapter: ours = isErudiffAdapter(path)
        case .png: ours = isErudiffPNG(path)
        }
        guard ours else {
            throw RPCError.invalidParams("\"\(name)\" \(path) exists and is not \(kind.noun) written by erudiff; "
                                         + "pass \"overwrite\": true to replace it")
        }
    }

    static func describe(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        case S_IFLNK: return "a symbolic link"
        case S_IFREG: return "a regular file"
        default: return "of unknown type"
        }
    }

    /// The bytes of the regular file at `path` (opened non-blocking, following links), at most
    /// `limit`; `-32602` naming parameter `name` when it is not a regular file or cannot be read.
    static func contents(_ path: String, name: String, limit: Int) throws -> [UInt8] {
        try readable(path, name: name)
        guard let bytes = head(path, limit: limit, followLinks: true) else {
            throw RPCError.invalidParams("\"\(name)\" \(path) cannot be read (or is no longer a regular file)")
        }
        return bytes
    }

    /// The first `limit` bytes of the regular file at `path` (opened non-blocking, not following a
    /// final link unless asked), or nil.
    static func head(_ path: String, limit: Int, followLinks: Bool = false) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | (followLinks ? 0 : O_NOFOLLOW))
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        var out = [UInt8](repeating: 0, count: min(limit, Int(st.st_size)))
        var got = 0
        while got < out.count {
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, $0.count - got) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            got += n
        }
        return Array(out[0..<got])
    }

    /// A safetensors file whose metadata has `erudiff.steps` (what the daemon writes for adapters).
    static func isErudiffAdapter(_ path: String) -> Bool {
        guard let start = head(path, limit: 8), start.count == 8 else { return false }
        let n = start.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard n > 0, n <= 16 << 20, let all = head(path, limit: 8 + n), all.count == 8 + n,
              let header = try? JSON.parse(all[8...]) else { return false }
        return header["__metadata__"]?[AdapterCheckpoints.stepsKey] != nil
    }

    /// A PNG file with a `tEXt` chunk `Software` = erudiffd before its image data.
    static func isErudiffPNG(_ path: String) -> Bool {
        guard let bytes = head(path, limit: 64 << 10), bytes.starts(with: PNGText.signature) else { return false }
        return PNGText.text(in: bytes, key: "Software") == pngSoftware
    }
}

/// `tEXt` chunks of PNG files: erudiff marks the PNGs it writes (`Software: erudiffd`), so that it
/// replaces its own files and no others without `overwrite`.
enum PNGText {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// `png` with a `tEXt` chunk `key` = `value` after its header chunk.
    static func adding(key: String, value: String, to png: [UInt8]) -> [UInt8] {
        guard png.starts(with: signature), png.count >= 33 else { return png }
        let ihdrEnd = 8 + 12 + Int(UInt32(png[8]) << 24 | UInt32(png[9]) << 16 | UInt32(png[10]) << 8 | UInt32(png[11]))
        var data = Array("tEXt".utf8) + Array(key.utf8) + [0] + Array(value.utf8)
        let crc = crc32(data)
        let length = UInt32(data.count - 4)
        var chunk = [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
        chunk += data
        chunk += [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
        data = Array(png[0..<ihdrEnd]) + chunk + Array(png[ihdrEnd...])
        return data
    }

    /// The value of the first `tEXt` chunk named `key` before the image data, or nil.
    static func text(in png: [UInt8], key: String) -> String? {
        var i = 8
        while i + 8 <= png.count {
            let n = Int(UInt32(png[i]) << 24 | UInt32(png[i + 1]) << 16 | UInt32(png[i + 2]) << 8 | UInt32(png[i + 3]))
            let type = String(decoding: png[(i + 4)..<(i + 8)], as: UTF8.self)
            if type == "IDAT" || type == "IEND" { return nil }
            guard i + 8 + n <= png.count else { return nil }
            if type == "tEXt" {
                let body = png[(i + 8)..<(i + 8 + n)]
                if let zero = body.firstIndex(of: 0), String(decoding: body[..<zero], as: UTF8.self) == key {
                    return String(decoding: body[(zero + 1)...], as: UTF8.self)
                }
            }
            i += 12 + n
        }
        return nil
    }

    /// CRC-32 (ISO 3309, as PNG uses) of `bytes`.
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return c ^ 0xFFFF_FFFF
    }
}
