import Foundation
import World

/// Everything the refactoring job measured, as written to `results.json` (and tabulated in
/// `results.md`): each evaluation, each training run, and the wall time of every stage.
public struct RefactoringResults: Codable, Equatable, Sendable {
    /// The base model (adapter off).
    public var baseline: EvaluationResult?
    public var dkdm: DistributionMatching.Result?
    /// DK-DM continued on the policy's samples (when the options ask for it).
    public var dkdmPolicy: DistributionMatching.Result?
    /// After DK-DM alone (ablation only).
    public var afterDKDM: EvaluationResult?
    public var norl: NegativeOnlyRL.Result?
    /// After DK-DM and NO-RL.
    public var final: EvaluationResult?
    /// NO-RL alone from the base model (ablation only).
    public var norlOnly: NegativeOnlyRL.Result?
    public var afterNoRLOnly: EvaluationResult?
    /// Wall-clock seconds per stage (summed over resumptions), by stage name.
    public var seconds: [String: Double] = [:]
    /// Processor seconds (user + system, all threads) per stage: on a shared machine, wall time
    /// overstates what the job needs; CPU time / threads is what it would take on idle cores with
    /// perfect scaling (a lower bound).
    public var cpuSeconds: [String: Double] = [:]
    public var options: RefactoringOptions
    public var model: String
    public var command: String?

    public init(options: RefactoringOptions, model: String) { self.options = options; self.model = model }

    /// The evaluated variants in table order.
    public var variants: [(name: String, result: EvaluationResult)] {
        var v: [(String, EvaluationResult)] = []
        if let r = baseline { v.append(("base", r)) }
        if let r = afterDKDM { v.append(("DK-DM only", r)) }
        if let r = afterNoRLOnly { v.append(("NO-RL only", r)) }
        if let r = final { v.append((finalName, r)) }
        return v
    }

    /// The final variant's name (report rows and grid column): "DK-DM" alone when NO-RL ran no round
    /// (a DK-DM-only schedule).
    public var finalName: String { norl.map { $0.rounds > 0 } == false ? "DK-DM (0 NO-RL rounds)" : "DK-DM + NO-RL" }

    /// The Markdown report: knowledge metrics per split, explicit captions, dislocation, families,
    /// training summaries and timings.
    public func markdown() -> String {
        func f(_ x: Double?, _ digits: Int = 3) -> String { x.map { String(format: "%.\(digits)f", $0) } ?? "–" }
        func pct(_ x: Double?) -> String { x.map { String(format: "%.1f%%", 100 * $0) } ?? "–" }
        var s = "# Knowledge refactoring of `\(model)`\n\n"
        if let command { s += "Command: `\(command)`\n\n" }
        let splits = ["train", "test-paraphrase", "test-concept"]
        s += "## Implicit prompts per split\n\nscore / strict accuracy / knowledge gap of the implicit prompts.\n\n"
        s += "| variant | " + splits.map { "\($0) score | acc | gap" }.joined(separator: " | ") + " |\n"
        s += "|---|" + String(repeating: "---:|---:|---:|", count: splits.count) + "\n"
        for (name, r) in variants {
            s += "| \(name) | " + splits.map { sp in
                let g = r.split(sp)
                return "\(f(g?.implicit?.score)) | \(pct(g?.implicit?.accuracy)) | \(f(g?.knowledgeGap, 2))"
            }.joined(separator: " | ") + " |\n"
        }
        s += "\n## Anchors and explicit captions\n\nstrict accuracy of the explicit anchors (per split) and of random "
            + "explicit captions (`world:explicit`); mean knowledge dislocation per split.\n\n"
        s += "| variant | world:explicit score | acc | " + splits.map { "\($0) explicit acc" }.joined(separator: " | ")
            + " | " + splits.map { "D \($0)" }.joined(separator: " | ") + " |\n"
        s += "|---|---:|---:|" + String(repeating: "---:|", count: 2 * splits.count) + "\n"
        for (name, r) in variants {
            s += "| \(name) | \(f(r.explicit?.score)) | \(pct(r.explicit?.accuracy)) | "
                + splits.map { pct(r.split($0)?.explicit?.accuracy) }.joined(separator: " | ") + " | "
                + splits.map { f(r.dislocation?.bySplit[$0], 4) }.joined(separator: " | ") + " |\n"
        }
        s += "\n## Clean images\n\nshare of images the verifier explains whole (a flat field, or one object on it, "
            + "with at most \(pct(Double(Verification.cleanStrayLimit))) of the pixels stray): implicit prompts per split "
            + "and random explicit captions. A drop is collateral damage (smears, specks).\n\n"
        s += "| variant | " + splits.map { "\($0) implicit" }.joined(separator: " | ") + " | world:explicit |\n"
        s += "|---|" + String(repeating: "---:|", count: splits.count + 1) + "\n"
        for (name, r) in variants {
            s += "| \(name) | " + splits.map { pct(r.split($0)?.implicit?.clean) }.joined(separator: " | ")
                + " | \(pct(r.explicit?.clean)) |\n"
        }
        let names = KnowledgeMetrics.errorNames
        s += "\n## What the wrong images got wrong\n\nimages with each attribute wrong (\"object\": no clear object), "
            + "implicit prompts of `train` and random explicit captions; one image can count twice.\n\n"
        s += "| variant | images | " + names.map { "train \($0)" }.joined(separator: " | ") + " | images | "
            + names.map { "explicit \($0)" }.joined(separator: " | ") + " |\n"
        s += "|---|" + String(repeating: "---:|", count: 2 * names.count + 2) + "\n"
        for (name, r) in variants {
            func counts(_ p: PromptStats?) -> String {
                "\(p?.images ?? 0) | " + names.map { n in p?.wrong.map { String($0[n] ?? 0) } ?? "–" }.joined(separator: " | ")
            }
            s += "| \(name) | \(counts(r.split("train")?.implicit)) | \(counts(r.explicit)) |\n"
        }
        if let r = final ?? baseline, let k = r.knowledge {
            s += "\n## Families (\(final == nil ? "base" : finalName), all splits)\n\n"
            s += "| family | items | implicit score | acc | explicit acc | superficial score | gap |\n|---|---:|---:|---:|---:|---:|---:|\n"
            for fam in KnowledgeItem.Family.allCases {
                guard let g = k.byFamily[fam.rawValue] else { continue }
                s += "| \(fam.rawValue) | \(g.items) | \(f(g.implicit?.score)) | \(pct(g.implicit?.accuracy)) | "
                    + "\(pct(g.explicit?.accuracy)) | \(f(g.superficial?.score)) | \(f(g.knowledgeGap, 2)) |\n"
            }
        }
        s += "\n## Training\n\n"
        for (name, d) in [("DK-DM", dkdm), ("DK-DM on the policy's samples", dkdmPolicy)] {
            guard let d else { continue }
            s += "- \(name): \(d.steps) steps, loss \(f(d.loss.prefix(10).mean)) → \(f(d.loss.suffix(10).mean)) "
                + "(matching term \(f(d.matchLoss.prefix(10).mean, 4)) → \(f(d.matchLoss.suffix(10).mean, 4))), "
                + String(format: "%.0f s\n", d.elapsedSeconds)
            if let c = d.anchorCheck {
                s += "  - verified anchors: \(c.accepted) of \(c.verified) accepted; \(c.short) explicit prompts short of "
                    + "their anchors per pair, \(c.none) with none (trained on unverified anchors)\n"
            }
        }
        for (name, r) in [("NO-RL after DK-DM", norl), ("NO-RL only", norlOnly)] {
            guard let r else { continue }
            s += "- \(name): \(r.rounds) rounds, reward \(f(r.rewardMean)) ± \(f(r.rewardStd)), \(r.negatives) negative samples, "
                + "rounds' reward means " + r.perRound.map { f($0.rewardMean) }.joined(separator: ", ")
                + ", skipped groups " + r.perRound.map { "\($0.skippedGroups)/\($0.groups)" }.joined(separator: ", ")
                + String(format: ", %.0f s\n", r.elapsedSeconds)
        }
        s += "\n## Time per stage\n\nwall-clock seconds, and processor seconds (all threads; on a busy machine "
            + "wall time overstates what the job needs)\n\n| stage | wall s | CPU s |\n|---|---:|---:|\n"
        for name in RefactoringStage.allCases.map(\.rawValue) where seconds[name] != nil {
            s += "| \(name) | \(String(format: "%.1f", seconds[name]!)) | \(String(format: "%.1f", cpuSeconds[name] ?? 0)) |\n"
        }
        s += "| **total** | \(String(format: "%.1f", seconds.values.reduce(0, +))) | "
            + "\(String(format: "%.1f", cpuSeconds.values.reduce(0, +))) |\n"
        return s
    }
}

/// The stages of the refactoring job, in order.
public enum RefactoringStage: String, Codable, CaseIterable, Sendable {
    case baseline, gridBase = "grid-base", dkdm, dkdmPolicy = "dkdm-policy", afterDKDM = "eval-dkdm", gridDKDM = "grid-dkdm", norl, final = "eval-final"
    case gridFinal = "grid-final", norlOnly = "norl-only", afterNoRLOnly = "eval-norl-only", report, done
}

/// Processor seconds (user + system) this process has used so far.
func processCPUSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec)
        + Double(u.ru_stime.tv_usec) / 1e6
}

extension Collection where Element == Float {
    fileprivate var mean: Double? { isEmpty ? nil : Double(reduce(0, +)) / Double(count) }
}
