#!/usr/bin/env python3
"""One NO-RL variant through a running erudiffd, measured the way the README's NO-RL tables are.

Loads a DK-DM adapter, runs `rlStep` with scripts/demo.json's `rlStep` object plus the override,
saves the adapter, then evaluates `world:train` (4 samples per item, 16 steps, CFG 4) at each
evaluation seed and, if asked, `world:explicit` (256 captions x 2 samples) and `world:test-paraphrase`
(8 samples per item, 16 steps, CFG 4). Writes one JSON per call
into --out and prints a summary line per evaluation. With --override null the adapter is only
evaluated (the "DK-DM alone" rows).

    scripts/rl-variant.py --socket /tmp/d.sock --adapter dkdm.safetensors --name r6s10 \
        --override '{"rounds": 6, "samplingSteps": 10}' --seeds 0,1,2,3 --explicit-seeds 0,1 --out /tmp/rl
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
from erudiff import Client  # noqa: E402


def seeds(text):
    return [int(s) for s in text.split(",") if s.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", required=True, help="erudiffd's socket")
    ap.add_argument("--adapter", required=True, help="the DK-DM adapter NO-RL starts from (adapters/load)")
    ap.add_argument("--name", required=True, help="prefix of the files written")
    ap.add_argument("--override", default="{}", help="JSON object merged into demo.json's rlStep, or null: no NO-RL")
    ap.add_argument("--seeds", type=seeds, default=[0, 1], help="world:train evaluation seeds")
    ap.add_argument("--explicit-seeds", type=seeds, default=[], help="world:explicit evaluation seeds")
    ap.add_argument("--paraphrase-seeds", type=seeds, default=[], help="world:test-paraphrase evaluation seeds")
    ap.add_argument("--config", default=os.path.join(ROOT, "scripts", "demo.json"))
    ap.add_argument("--out", required=True, help="directory for the JSON results")
    a = ap.parse_args()
    override = json.loads(a.override)
    if override is not None and not isinstance(override, dict):
        ap.error("--override must be a JSON object or null")
    os.makedirs(a.out, exist_ok=True)

    def write(suffix, value):
        with open(os.path.join(a.out, f"{a.name}.{suffix}.json"), "w") as f:
            json.dump(value, f)

    c = Client(a.socket, timeout=None)
    c.call("adapters/load", {"path": os.path.abspath(a.adapter)})
    if override is not None:
        with open(a.config) as f:
            params = dict(json.load(f)["rlStep"])
        params.update(override)
        t = time.time()
        r = c.call("rlStep", params)
        wall = time.time() - t
        write("rl", {"params": params, "wallSeconds": wall, "result": r})
        means = [round(x["rewardMean"], 3) for x in r.get("perRound", [])]
        print(f"{a.name} rlStep {wall:.1f} s, rollouts' mean reward per round {means}", flush=True)
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
