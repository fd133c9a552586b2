import Foundation

/// A validated set of knowledge items (DESIGN §5) with queries by split, family and subdomain and the
/// built-in prompt sets `world:train`, `world:test-paraphrase`, `world:test-concept` and `world:test`.
///
/// The bundled base is `Resources/knowledge.json`; `load(path:)` reads another file in the same
/// format, `init(data:source:)` reads bytes (a caller-supplied item list). Anything malformed — a
/// missing field, a word outside the world's vocabulary, a caption that does not state its attributes,
/// a broken split rule — is a thrown `KnowledgeBaseError` naming the source and the item.
public struct KnowledgeBase: Sendable {
    /// The items in file order.
    public let items: [KnowledgeItem]
    /// Where the items came from (a path or "bundled knowledge.json"), for messages.
    public let source: String

    /// Optional groups of rules; the per-item and uniqueness rules always apply.
    public struct Checks: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// `Caption.parse(explicit) == expect` and `Caption.parse(superficial) == superficialExpect`.
        public static let captions = Checks(rawValue: 1)
        /// Split semantics: every paraphrase's concept is a train concept; no test-concept concept is in
        /// train; a concept appears at most once in train and once in test-concept.
        public static let splits = Checks(rawValue: 2)
        public static let all: Checks = [.captions, .splits]
    }

    /// The names of the built-in prompt sets, as the daemon's `set` parameter spells them.
    public static let setNames = ["world:train", "world:test-paraphrase", "world:test-concept", "world:test"]

    /// The file name of the bundled data.
    public static let resourceName = "knowledge.json"

    /// Validates `items` (see `Checks`; per-item and uniqueness rules always run).
    public init(items: [KnowledgeItem], source: String = "items", checks: Checks = .all) throws {
        for (i, item) in items.enumerated() {
            try KnowledgeBase.check(item, index: i, source: source, checks: checks)
        }
        try KnowledgeBase.checkTogether(items, source: source, checks: checks)
        self.items = items
        self.source = source
    }

    /// Reads the knowledge-base JSON format — an object with an `items` array (and optional `format`,
    /// `version`, `description`) or a bare array of items — and validates it.
    public init(data: Data, source: String, checks: Checks = .all) throws {
        try self.init(items: KnowledgeBase.decodeItems(data, source: source), source: source, checks: checks)
    }

    /// Loads and validates the knowledge base at `path`.
    public static func load(path: String, checks: Checks = .all) throws -> KnowledgeBase {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw KnowledgeBaseError.unreadable(path: path, reason: error.localizedDescription)
        }
        return try KnowledgeBase(data: data, source: path, checks: checks)
    }

    /// Loads the bundled knowledge base (all checks on).
    public static func bundled() throws -> KnowledgeBase {
        guard let url = bundledURL() else {
            throw KnowledgeBaseError.resourceMissing(
                "no \(resourceName) in the World resource bundle beside \(Bundle.main.bundleURL.path) "
                + "nor in the source tree; pass an explicit path")
        }
        return try load(path: url.path)
    }

    /// Where the bundled data file is: in the resource bundle SwiftPM places beside the executable
    /// (reached through `Bundle.module`), else in the source tree this file was built from.
    public static func bundledURL() -> URL? {
        // `Bundle.module` stops the process when it finds no bundle, so it is only asked once the
        // bundle folder it looks for first is known to exist.
        let fm = FileManager.default
        let besideMain = ["erudiff_World.resources", "erudiff_World.bundle"].contains { name in
            fm.fileExists(atPath: Bundle.main.bundleURL.appendingPathComponent(name).path)
        }
        if besideMain,
           let url = Bundle.module.url(forResource: "knowledge", withExtension: "json",
                                       subdirectory: "Resources"),
           fm.fileExists(atPath: url.path) {
            return url
        }
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Resources").appendingPathComponent(resourceName)
        return fm.fileExists(atPath: source.path) ? source : nil
    }

    // MARK: Queries

    /// Items of one split.
    public func items(in split: KnowledgeItem.Split) -> [KnowledgeItem] {
        items.filter { $0.split == split }
    }

    /// Items of one family.
    public func items(in family: KnowledgeItem.Family) -> [KnowledgeItem] {
        items.filter { $0.family == family }
    }

    /// Items of one subdomain.
    public func items(inSubdomain subdomain: String) -> [KnowledgeItem] {
        items.filter { $0.subdomain == subdomain }
    }

    /// The item with this id, if any.
    public func item(id: String) -> KnowledgeItem? {
        items.first { $0.id == id }
    }

    /// The subdomains in order of first appearance.
    public var subdomains: [String] {
        var seen = Set<String>()
        return items.compactMap { seen.insert($0.subdomain).inserted ? $0.subdomain : nil }
    }

    /// The concepts of one split.
    public func concepts(in split: KnowledgeItem.Split) -> Set<String> {
        Set(items(in: split).map(\.concept))
    }

    /// A built-in prompt set by name (`setNames`): `world:test` is both test splits.
    public func set(named name: String) throws -> [KnowledgeItem] {
        switch name {
        case "world:train": return items(in: .train)
        case "world:test-paraphrase": return items(in: .testParaphrase)
        case "world:test-concept": return items(in: .testConcept)
        case "world:test": return items.filter { $0.split != .train }
        default: throw KnowledgeBaseError.unknownSet(name)
        }
    }
}

// MARK: Validation

extension KnowledgeBase {
    /// Rules on one item alone.
    static func check(_ item: KnowledgeItem, index: Int, source: String, checks: Checks) throws {
        func fail(_ reason: String) -> KnowledgeBaseError {
            .invalidItem(source: source, index: index, id: item.id, reason: reason)
        }
        let texts: [(String, String)] = [
            ("id", item.id), ("concept", item.concept), ("subdomain", item.subdomain),
            ("implicit", item.implicit), ("explicit", item.explicit), ("superficial", item.superficial),
        ]
        for (name, text) in texts where text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw fail("\(name) is empty")
        }
        guard item.expect.shape != nil else { throw fail("expect names no shape") }
        guard item.superficialExpect.shape != nil else { throw fail("superficialExpect names no shape") }
        if KnowledgeMetrics.matched(found: item.superficialExpect, expected: item.expect)
            == item.expect.namedCount {
            throw fail("superficialExpect \(describe(item.superficialExpect)) agrees with expect "
                       + "\(describe(item.expect)) on every attribute expect names")
        }
        if checks.contains(.captions) {
            let readExplicit = Caption.parse(item.explicit)
            guard readExplicit == item.expect else {
                throw fail("explicit caption \"\(item.explicit)\" reads as \(describe(readExplicit)), "
                           + "not expect \(describe(item.expect))")
            }
            let readSuperficial = Caption.parse(item.superficial)
            guard readSuperficial == item.superficialExpect else {
                throw fail("superficial caption \"\(item.superficial)\" reads as "
                           + "\(describe(readSuperficial)), not superficialExpect "
                           + "\(describe(item.superficialExpect))")
            }
        }
    }

    /// Rules across items.
    static func checkTogether(_ items: [KnowledgeItem], source: String, checks: Checks) throws {
        func fail(_ reason: String) -> KnowledgeBaseError { .inconsistent(source: source, reason: reason) }
        var ids = Set<String>()
        var prompts: [String: String] = [:]
        var familyOf: [String: KnowledgeItem.Family] = [:]
        var first: [String: KnowledgeItem] = [:]
        for item in items {
            guard ids.insert(item.id).inserted else { throw fail("duplicate id \"\(item.id)\"") }
            let key = normalizedPrompt(item.implicit)
            if let other = prompts[key] {
                throw fail("items \"\(other)\" and \"\(item.id)\" have the same implicit prompt "
                           + "\"\(item.implicit)\"")
            }
            prompts[key] = item.id
            if let f = familyOf[item.subdomain], f != item.family {
                throw fail("subdomain \"\(item.subdomain)\" is in family \(f.rawValue) and, at item "
                           + "\"\(item.id)\", in \(item.family.rawValue)")
            }
            familyOf[item.subdomain] = item.family
            if let f = first[item.concept] {
                guard f.expect == item.expect, f.family == item.family, f.subdomain == item.subdomain else {
                    throw fail("items \"\(f.id)\" and \"\(item.id)\" share concept \"\(item.concept)\" "
                               + "but not its expect, family and subdomain")
                }
            } else {
                first[item.concept] = item
            }
        }
        guard checks.contains(.splits) else { return }
        var train = Set<String>(), heldOut = Set<String>()
        for item in items where item.split == .train {
            guard train.insert(item.concept).inserted else {
                throw fail("concept \"\(item.concept)\" appears twice in train (item \"\(item.id)\")")
            }
        }
        for item in items {
            switch item.split {
            case .train:
                continue
            case .testParaphrase:
                guard train.contains(item.concept) else {
                    throw fail("paraphrase \"\(item.id)\" rewords concept \"\(item.concept)\", "
                               + "which no train item has")
                }
            case .testConcept:
                guard !train.contains(item.concept) else {
                    throw fail("test-concept item \"\(item.id)\" has concept \"\(item.concept)\", "
                               + "which train also has")
                }
                guard heldOut.insert(item.concept).inserted else {
                    throw fail("concept \"\(item.concept)\" appears twice in test-concept "
                               + "(item \"\(item.id)\")")
                }
            }
        }
    }

    /// A prompt reduced to its lower-cased letters and digits, single-spaced, so that two prompts
    /// differing only in case or punctuation count as the same.
    static func normalizedPrompt(_ text: String) -> String {
        var words: [String] = []
        var current = ""
        for ch in text.lowercased() {
            if ch.isLetter || ch.isNumber { current.append(ch) } else if !current.isEmpty {
                words.append(current); current = ""
            }
        }
        if !current.isEmpty { words.append(current) }
        return words.joined(separator: " ")
    }

    /// "{shape: circle, color: red}", or "nothing" for nil (a caption the parser cannot read).
    static func describe(_ a: Attributes?) -> String {
        guard let a else { return "nothing (no single shape)" }
        var parts: [String] = []
        if let s = a.shape { parts.append("shape: \(s.rawValue)") }
        if let c = a.color { parts.append("color: \(c.rawValue)") }
        if let b = a.background { parts.append("background: \(b.rawValue)") }
        if let s = a.size { parts.append("size: \(s.rawValue)") }
        if let p = a.position { parts.append("position: \(p.rawValue)") }
        return "{" + parts.joined(separator: ", ") + "}"
    }
}
