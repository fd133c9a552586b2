#!/usr/bin/env python3
"""One DK-DM or NO-RL variant through a running erudiffd, measured the way the README's tables are.

rlStep (the default): loads a DK-DM adapter, runs `rlStep` with scripts/demo.json's `rlStep` object
plus the override, saves the adapter. matchDistributions: runs a fresh DK-DM with demo.json's
`matchDistributions` object plus the override (`--lora-path` and `--wordings` build the two overrides
of the README's paraphrase experiments), saves the adapter. Then evaluates `world:train` (4 samples per
item, 16 steps, CFG 4) at each evaluation seed and, if asked, `world:explicit` (256 captions x 2
samples) and `world:test-paraphrase` (8 samples per item). Writes one JSON per call into --out and prints
a summary line per evaluation. With --override null the adapter is only evaluated.

    scripts/variant.py --socket /tmp/d.sock --adapter dkdm.safetensors --name r6s10 \\
        --override '{"rounds": 6, "samplingSteps": 10}' --seeds 0,1,2,3 --explicit-seeds 0,1 --out /tmp/rl
    scripts/variant.py --socket /tmp/d.sock --method matchDistributions --name text --lora-path text \\
        --seeds 0,1 --paraphrase-seeds 0,1,2,3 --out /tmp/dk
"""
import argparse
import json
import os
import struct
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
from erudiff import Client  # noqa: E402

# Implicit-prompt wordings of --wordings (the first is the prompt as the knowledge base gives it).
WORDINGS = ["{}", "a picture of {}", "an image showing {}", "{}, drawn simply"]
# The per-token text path inside a double-stream block.
TEXT_SIDE = ["attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj", "attn.to_add_out",
             "ff_context.net.0.proj", "ff_context.net.2", "norm1_context.linear"]


def seeds(text):
    return [int(s) for s in text.split(",") if s.strip()]


def linear_layers(model_dir):
    """Every linear layer's module name, from the checkpoint's safetensors header."""
    with open(os.path.join(model_dir, "diffusion_pytorch_model.safetensors"), "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    return sorted(k[:-len(".weight")] for k, v in header.items()
                  if k.endswith(".weight") and isinstance(v, dict) and len(v["shape"]) == 2)


def lora_targets(path, model_dir):
    """"text": the context and pooled-text embedders and each double block's text side; "not-text":
    every linear layer except the context embedder and the double blocks' text side."""
    layers = linear_layers(model_dir)
    per_token = {"context_embedder"} | {m for m in layers if m.startswith("transformer_blocks.")
                                        and any(m.endswith("." + s) for s in TEXT_SIDE)}
    if path == "text":
        return sorted(per_token | {m for m in layers if m.startswith("time_text_embed.text_embedder.")})
    return [m for m in layers if m not in per_token]


def reworded_pairs(knowledge):
    with open(knowledge) as f:
        kb = json.load(f)
    items = [i for i in (kb["items"] if isinstance(kb, dict) else kb) if i["split"] == "train"]
    return [{"implicit": w.format(i["implicit"]), "explicit": i["explicit"], "id": i["id"] + (f"#{k}" if k else "")}
            for i in items for k, w in enumerate(WORDINGS)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", required=True, help="erudiffd's socket")
    ap.add_argument("--method", choices=["rlStep", "matchDistributions"], default="rlStep")
    ap.add_argument("--adapter", help="the adapter to start from (rlStep) or to evaluate (--override null)")
    ap.add_argument("--name", required=True, help="prefix of the files written")
    ap.add_argument("--override", default="{}", help="JSON object merged into demo.json's section, or null: evaluate only")
    ap.add_argument("--lora-path", choices=["text", "not-text"], help="matchDistributions: LoRA on these layers only")
    ap.add_argument("--wordings", action="store_true",
                    help="matchDistributions: the train pairs with each implicit prompt in %d wordings" % len(WORDINGS))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "mini"), help="for --lora-path's layer names")
    ap.add_argument("--seeds", type=seeds, default=[0, 1], help="world:train evaluation seeds")
    ap.add_argument("--explicit-seeds", type=seeds, default=[], help="world:explicit evaluation seeds")
    ap.add_argument("--paraphrase-seeds", type=seeds, default=[], help="world:test-paraphrase evaluation seeds")
    ap.add_argument("--config", default=os.path.join(ROOT, "scripts", "demo.json"))
    ap.add_argument("--out", required=True, help="directory for the JSON results")
    a = ap.parse_args()
    override = json.loads(a.override)
    if override is not None and not isinstance(override, dict):
        ap.error("--override must be a JSON object or null")
    if (override is None or a.method == "rlStep") and not a.adapter:
        ap.error("--adapter is needed for rlStep and for --override null")
    if a.method == "rlStep" and (a.lora_path or a.wordings):
        ap.error("--lora-path and --wordings are matchDistributions options")
    os.makedirs(a.out, exist_ok=True)

    def write(suffix, value):
        with open(os.path.join(a.out, f"{a.name}.{suffix}.json"), "w") as f:
            json.dump(value, f)

    c = Client(a.socket, timeout=None)
    if a.adapter:
        c.call("adapters/load", {"path": os.path.abspath(a.adapter)})
    if override is not None:
        with open(a.config) as f:
            params = dict(json.load(f)[a.method])
        if a.lora_path:
            params["lora"] = dict(params.get("lora", {}), targets=lora_targets(a.lora_path, a.model))
        if a.wordings:
            params.pop("set", None)
            params["pairs"] = reworded_pairs(os.path.join(ROOT, "Sources", "World", "Resources", "knowledge.json"))
        params.update(override)
        t = time.time()
        r = c.call(a.method, params)
        wall = time.time() - t
        write("run", {"params": params, "wallSeconds": wall, "result": r})
        if a.method == "rlStep":
            means = [round(x["rewardMean"], 3) for x in r.get("perRound", [])]
            print(f"{a.name} rlStep {wall:.1f} s, rollouts' mean reward per round {means}", flush=True)
        else:
            print(f"{a.name} matchDistributions {wall:.1f} s, {r['steps']} steps on {r['pairs']} pairs", flush=True)
        c.call("adapters/save", {"path": os.path.abspath(os.path.join(a.out, f"{a.name}.safetensors"))})
    # (seeds, file name, evaluate params, the split whose implicit prompts are reported; None: world:explicit)
    runs = [(a.seeds, "train", {"set": "world:train", "samplesPerItem": 4}, "train"),
            (a.explicit_seeds, "explicit", {"set": "world:explicit", "explicitCount": 256, "samplesPerItem": 2}, None),
            (a.paraphrase_seeds, "paraphrase", {"set": "world:test-paraphrase", "samplesPerItem": 8}, "test-paraphrase")]
    for chosen, name, params, split in runs:
        for s in chosen:
            e = c.call("evaluate", dict(params, steps=16, guidance=4, seed=s))
            write(f"{name}{s}", e)
            if split is None:
                print(f"{a.name} world:explicit seed {s}: strict {100 * e['accuracy']:.1f}%", flush=True)
                continue
            t = e["bySplit"][split]
            print(f"{a.name} {split} seed {s}: strict {100 * t['accuracy']:.1f}%, score {t['score']:.3f}, "
                  f"gap {t['knowledgeGap']:.2f}, anchors {100 * t['explicit']['accuracy']:.1f}%", flush=True)


if __name__ == "__main__":
    main()
