#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The process's memory as the kernel sees it, and giving freed heap memory back.
public enum Memory {
    /// Returns free heap memory of every malloc arena to the system (glibc `malloc_trim`).
    public static func trim() {
        if let f = mallocTrim { _ = f(0) }
    }

    /// glibc's `malloc_trim` (not in Swift's Glibc module: looked up once by name).
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(sym, to: (@convention(c) (Int) -> Int32).self)
    }()

    /// `VmRSS` and `VmHWM` (peak) of this process in bytes, from /proc/self/status (nil elsewhere).
    public static func resident() -> (rss: Int, peak: Int)? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        func kB(_ key: String) -> Int? {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return nil }
            return line.split(separator: " ").compactMap { Int($0) }.first.map { $0 * 1024 }
        }
        guard let rss = kB("VmRSS"), let peak = kB("VmHWM") else { return nil }
        return (rss, peak)
    }
}
