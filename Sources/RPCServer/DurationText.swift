import Foundation

/// Durations as people write them on a command line or in a request: `90s`, `30m`, `1h`, `500ms`,
/// or a bare number of seconds (`0` is zero). Used by `--idle-exit` and by applications' own
/// parameters (erudiffd's `keepAlive`).
public enum DurationText {
    /// The longest duration accepted: 365 days.
    public static let maximum: Double = 365 * 86_400

    /// Seconds, or nil when `text` is not a number followed by nothing, `ms`, `s`, `m` or `h`, is
    /// negative, or is longer than `maximum`.
    public static func seconds(_ text: String) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = t, scale = 1.0
        if let (suffix, factor) = units.first(where: { t.hasSuffix($0.0) }) {
            number = String(t.dropLast(suffix.count))
            scale = factor
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isNumber || $0 == "." }),
              let value = Double(number), value.isFinite else { return nil }
        let s = value * scale
        return s <= maximum ? s : nil
    }

    /// `seconds` written back the short way: `30m`, `2h`, `90s`, `1.5s`, `250ms`.
    public static func describe(_ seconds: Double) -> String {
        func trimmed(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(format: "%g", v) }
        if seconds >= 3600, seconds.truncatingRemainder(dividingBy: 3600) == 0 { return trimmed(seconds / 3600) + "h" }
        if seconds >= 60, seconds.truncatingRemainder(dividingBy: 60) == 0 { return trimmed(seconds / 60) + "m" }
        if seconds > 0, seconds < 1 { return trimmed((seconds * 1000).rounded()) + "ms" }
        return trimmed(seconds) + "s"
    }
}
