import Foundation
import Tensors
import World

/// A prompt NO-RL samples groups for, with what the world verifier must find in its images: a
/// knowledge item's `expect` for its implicit or explicit prompt, or the attributes an explicit
/// caption states.
public struct RLPrompt: Codable, Equatable, Hashable, Sendable {
    public var text: String
    public var expect: Attributes

    public init(text: String, expect: Attributes) { self.text = text; self.expect = expect }

    /// The implicit (or explicit) prompt of `item`, rewarded against `item.expect`. The superficial
    /// prompt is refused: its right image is by definition not the item's answer.
    public init(_ item: KnowledgeItem, _ kind: KnowledgeItem.PromptKind) throws {
        guard kind != .superficial else {
            throw EruDiffError.invalidArgument("NO-RL rewards superficial prompts of '\(item.id)' against nothing sensible")
        }
        self.init(text: item.prompt(kind), expect: item.expect)
    }

    /// The expectation of a bare prompt (the daemon's `prompts` parameter): a knowledge item's
    /// implicit or explicit prompt is rewarded against the item's `expect`, any other text against
    /// what it states as an explicit caption. Throws when the text is neither.
    public static func resolve(_ text: String, knowledge: KnowledgeBase) throws -> RLPrompt {
        if let item = knowledge.items.first(where: { $0.implicit == text || $0.explicit == text }) {
            return RLPrompt(text: text, expect: item.expect)
        }
        guard let a = Caption.parse(text) else {
            throw EruDiffError.invalidArgument("no expectation known for '\(text)': it is neither a knowledge item's prompt nor an explicit caption of the world; pass rewards instead")
        }
        return RLPrompt(text: text, expect: a)
    }

    /// The prompts of each item `rlStep` samples when a request names none (`kinds`).
    public static let defaultKinds: [KnowledgeItem.PromptKind] = [.implicit, .explicit]

    /// What `rlStep` samples for a set: each of `kinds` of each item once, then `captions` random
    /// explicit captions drawn from `seed` (the daemon's and the refactoring job's NO-RL prompts).
    public static func list(_ items: [KnowledgeItem], kinds: [KnowledgeItem.PromptKind], captions: Int, seed: UInt64) throws -> [RLPrompt] {
        var list: [RLPrompt] = [], seen = Set<RLPrompt>()
        func add(_ p: RLPrompt) { if seen.insert(p).inserted { list.append(p) } }
        for item in items { for kind in kinds { add(try RLPrompt(item, kind)) } }
        var rng = RNG(seed: SeedHash.seed(seed, purpose: "daemon.rl-captions"))
        for _ in 0..<captions {
            let c = Caption.random(&rng)
            add(RLPrompt(text: c.text, expect: c.attributes))
        }
        return list
    }

    /// An explicit caption, rewarded against what it states.
    public init(caption: String) throws {
        guard let a = Caption.parse(caption) else {
            throw EruDiffError.invalidArgument("'\(caption)' is not an explicit caption of the world (no single shape)")
        }
        self.init(text: caption, expect: a)
    }
}

/// A group of samples of one prompt with rewards the caller computed (the daemon's sample records,
/// a notebook's own scorer): NO-RL learns from them without sampling or verifying.
public struct RLGroup {
    public var prompt: String
    /// The clean samples x0, images `[G, H, W, C]` in [-1, 1] (as the model made them).
    public var images: Tensor
    /// One reward per image (any scale; only differences within the group matter).
    public var rewards: [Double]

    public init(prompt: String, images: Tensor, rewards: [Double]) {
        self.prompt = prompt; self.images = images; self.rewards = rewards
    }
}
