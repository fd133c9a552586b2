/// The knowledge metrics of DESIGN §5, as pure functions over verified images (no model code):
///
/// - **score** of an image = the fraction of the attributes its item's `expect` names that the verifier
///   found; an image where the verifier found no clear object scores 0;
/// - **accuracy** = the share of images with every expected attribute right ("strict");
/// - **knowledge gap** of a group of items = `(s_implicit − s_superficial) / (s_explicit − s_superficial)`,
///   where `s_p` is the mean score against `expect` of the images generated from prompt p. 1 means the
///   implicit prompt is drawn as well as its explicit anchor, 0 no better than its literal misreading;
///   values below 0 or above 1 are reported as they are.
///
/// The gap is nil when it is not defined: when the group has no item with images of all three prompts,
/// or when `s_explicit − s_superficial` is below `minimumDenominator` (default 0.05). A denominator near
/// zero or negative means the model draws the explicit anchor no better than the misreading, so the
/// ratio would measure noise (and could be arbitrarily large); reporting nil says so instead. Per-item
/// gaps follow the same rule and are nil more often, since one item's scores are coarse.
public enum KnowledgeMetrics {
    /// The smallest `s_explicit − s_superficial` for which a knowledge gap is reported.
    public static let defaultMinimumDenominator = 0.05

    /// How many of the attributes `expected` names are equal in `found`.
    public static func matched(found: Attributes, expected: Attributes) -> Int {
        expected.namedCount - mismatched(found: found, expected: expected).count
    }

    /// The attributes `expected` names that `found` has otherwise ("shape", "color", "background",
    /// "size", "position"): what a wrong image got wrong.
    public static func mismatched(found: Attributes, expected: Attributes) -> [String] {
        var out: [String] = []
        if let s = expected.shape, found.shape != s { out.append("shape") }
        if let c = expected.color, found.color != c { out.append("color") }
        if let b = expected.background, found.background != b { out.append("background") }
        if let s = expected.size, found.size != s { out.append("size") }
        if let p = expected.position, found.position != p { out.append("position") }
        return out
    }

    /// The names `errors(found:expected:)` uses, in report order.
    public static let errorNames = ["object", "shape", "color", "background", "size", "position"]

    /// What one image got wrong, for error counts: ["object"] when the verifier found no clear object
    /// where `expected` names a shape, else `mismatched(found:expected:)`.
    public static func errors(found: Attributes?, expected: Attributes) -> [String] {
        guard let found, expected.shape == nil || found.shape != nil else { return ["object"] }
        return mismatched(found: found, expected: expected)
    }

    /// The score of one image: the fraction of `expected`'s attributes found (0 when the verifier
    /// found no clear object, 1 when `expected` names nothing).
    public static func score(found: Attributes?, expected: Attributes) -> Double {
        let total = expected.namedCount
        guard total > 0 else { return 1 }
        guard let found else { return 0 }
        return Double(matched(found: found, expected: expected)) / Double(total)
    }

    /// Whether every attribute `expected` names was found (strict accuracy of one image).
    public static func isCorrect(found: Attributes?, expected: Attributes) -> Bool {
        guard let found else { return expected.namedCount == 0 }
        return matched(found: found, expected: expected) == expected.namedCount
    }

    /// Score and accuracy of `images` against their items' `expect`; nil for no images.
    public static func stats(_ images: [VerifiedImage]) -> PromptStats? {
        let clean = images.compactMap(\.clean)
        return stats(readings: images.map { (found: $0.found, expected: $0.item.expect) },
                     clean: clean.count == images.count ? clean : nil)
    }

    /// Score, accuracy and error counts of verifier readings against what each should have shown; nil
    /// for none (captions without a knowledge item use this directly); `clean`, one per reading, gives
    /// the clean share.
    public static func stats(readings: [(found: Attributes?, expected: Attributes)], clean: [Bool]? = nil) -> PromptStats? {
        guard !readings.isEmpty else { return nil }
        var score = 0.0, correct = 0
        var wrong: [String: Int] = [:]
        for r in readings {
            score += self.score(found: r.found, expected: r.expected)
            if isCorrect(found: r.found, expected: r.expected) { correct += 1 }
            for name in errors(found: r.found, expected: r.expected) { wrong[name, default: 0] += 1 }
        }
        let n = Double(readings.count)
        return PromptStats(images: readings.count, score: score / n, accuracy: Double(correct) / n, wrong: wrong,
                           clean: clean.map { Double($0.filter { $0 }.count) / Double($0.count) })
    }

    /// `(implicit − superficial) / (explicit − superficial)`, or nil when the denominator is below
    /// `minimumDenominator` (see the type's documentation).
    public static func knowledgeGap(implicit: Double, explicit: Double, superficial: Double,
                                    minimumDenominator: Double = defaultMinimumDenominator) -> Double? {
        let denominator = explicit - superficial
        guard denominator >= minimumDenominator, denominator.isFinite, implicit.isFinite else { return nil }
        return (implicit - superficial) / denominator
    }

    /// The metrics of one group of images (any mix of items and prompts).
    public static func group(_ images: [VerifiedImage],
                             minimumDenominator: Double = defaultMinimumDenominator) -> GroupMetrics {
        var byKind: [KnowledgeItem.PromptKind: [VerifiedImage]] = [:]
        var kindsOfItem: [String: Set<KnowledgeItem.PromptKind>] = [:]
        for image in images {
            byKind[image.prompt, default: []].append(image)
            kindsOfItem[image.item.id, default: []].insert(image.prompt)
        }
        // The gap compares the three prompts over the same items: those with images of all three.
        let complete = Set(kindsOfItem.filter { $0.value.count == KnowledgeItem.PromptKind.allCases.count }.keys)
        var gap: Double?
        if !complete.isEmpty {
            func mean(_ kind: KnowledgeItem.PromptKind) -> Double {
                stats(images.filter { $0.prompt == kind && complete.contains($0.item.id) })!.score
            }
            gap = knowledgeGap(implicit: mean(.implicit), explicit: mean(.explicit),
                               superficial: mean(.superficial), minimumDenominator: minimumDenominator)
        }
        return GroupMetrics(items: kindsOfItem.count,
                            implicit: byKind[.implicit].flatMap { stats($0) },
                            explicit: byKind[.explicit].flatMap { stats($0) },
                            superficial: byKind[.superficial].flatMap { stats($0) },
                            knowledgeGap: gap)
    }

    /// The metrics overall and per split, family, subdomain and item (keys: raw split and family
    /// names, subdomain names, item ids).
    public static func report(_ images: [VerifiedImage],
                              minimumDenominator: Double = defaultMinimumDenominator) -> KnowledgeReport {
        func grouped(_ key: (KnowledgeItem) -> String) -> [String: GroupMetrics] {
            Dictionary(grouping: images) { key($0.item) }
                .mapValues { group($0, minimumDenominator: minimumDenominator) }
        }
        return KnowledgeReport(overall: group(images, minimumDenominator: minimumDenominator),
                               bySplit: grouped { $0.split.rawValue },
                               byFamily: grouped { $0.family.rawValue },
                               bySubdomain: grouped { $0.subdomain },
                               byItem: grouped { $0.id })
    }
}

/// One generated and verified image: the item it was generated for, the prompt it came from, and the
/// attributes the verifier read (nil when it found no clear object).
public struct VerifiedImage: Hashable, Sendable {
    public var item: KnowledgeItem
    public var prompt: KnowledgeItem.PromptKind
    public var found: Attributes?
    /// Whether the verifier explained the whole image (`Verification.isClean`); nil where not read.
    public var clean: Bool?

    public init(item: KnowledgeItem, prompt: KnowledgeItem.PromptKind, found: Attributes?, clean: Bool? = nil) {
        self.item = item; self.prompt = prompt; self.found = found; self.clean = clean
    }

    /// An image as the `Verifier` read it: its attributes count as found (with no clear object the
    /// verifier names only the background, so only a right background earns credit).
    public init(item: KnowledgeItem, prompt: KnowledgeItem.PromptKind, verification: Verification) {
        self.init(item: item, prompt: prompt, found: verification.attributes, clean: verification.isClean)
    }

    /// This image's score against its item's `expect`.
    public var score: Double { KnowledgeMetrics.score(found: found, expected: item.expect) }
}

/// Score and strict accuracy of a set of images from one kind of prompt.
public struct PromptStats: Hashable, Codable, Sendable {
    public var images: Int
    /// Mean fraction of expected attributes found.
    public var score: Double
    /// Share of images with all expected attributes found.
    public var accuracy: Double
    /// How many images had each attribute wrong (`KnowledgeMetrics.errors`: "object", "shape", "color",
    /// "background", "size", "position"); one image can count under several. Nil where not counted
    /// (results written before the count existed).
    public var wrong: [String: Int]?
    /// Share of images the verifier explains whole (`Verification.isClean`: a flat field, or one object
    /// on it, with few stray pixels) — what tells a clean wrong image from a smear. Nil where not read.
    public var clean: Double?

    public init(images: Int, score: Double, accuracy: Double, wrong: [String: Int]? = nil, clean: Double? = nil) {
        self.images = images; self.score = score; self.accuracy = accuracy; self.wrong = wrong; self.clean = clean
    }
}

/// The metrics of one group of items: per prompt kind (nil where the group has no such images) and
/// the knowledge gap (nil where undefined, see `KnowledgeMetrics`).
public struct GroupMetrics: Hashable, Codable, Sendable {
    /// Items with at least one image in the group.
    public var items: Int
    public var implicit: PromptStats?
    public var explicit: PromptStats?
    public var superficial: PromptStats?
    public var knowledgeGap: Double?

    public init(items: Int, implicit: PromptStats?, explicit: PromptStats?, superficial: PromptStats?,
                knowledgeGap: Double?) {
        self.items = items; self.implicit = implicit; self.explicit = explicit
        self.superficial = superficial; self.knowledgeGap = knowledgeGap
    }

    /// The statistics of one prompt kind.
    public func stats(_ kind: KnowledgeItem.PromptKind) -> PromptStats? {
        switch kind {
        case .implicit: return implicit
        case .explicit: return explicit
        case .superficial: return superficial
        }
    }
}

/// `KnowledgeMetrics.report`'s result: overall and grouped metrics.
public struct KnowledgeReport: Hashable, Codable, Sendable {
    public var overall: GroupMetrics
    /// Keyed by split raw value ("train", "test-paraphrase", "test-concept").
    public var bySplit: [String: GroupMetrics]
    /// Keyed by family raw value.
    public var byFamily: [String: GroupMetrics]
    public var bySubdomain: [String: GroupMetrics]
    /// Keyed by item id.
    public var byItem: [String: GroupMetrics]
}
