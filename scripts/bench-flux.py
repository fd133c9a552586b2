#!/usr/bin/env python3
"""The flow transformer, ours vs diffusers/PyTorch, side by side in one run on the same config and weights.

Run with the reference venv after building the bench (release):
    swift build -c release --product erudiff-bench
    $(scripts/ref-venv) scripts/bench-flux.py [--bin .build/release/erudiff-bench] [--rounds 3] [--model DIR]

Shape (the default model): 64 image tokens (32x32 RGB packed 4x4, 48 channels), 16 text tokens, width 128
(4 heads x 32), 2 double + 4 single blocks, axes_dims_rope (8, 12, 12), MiniLM widths (384), random weights.
--model DIR measures a saved model instead (diffusers layout, e.g. models/mini): its config, its weights and
its text length (erudiff.json's text_tokens).
Measured, each as the best of several repetitions, rounds alternating between PyTorch (2 threads) and our
`erudiff-bench flux` (2 threads) on the weights this script saves:
  forward at batch 1 and 8; a training step at batch 32 (forward, MSE on eps - x0, backward, AdamW);
  20-step CFG sampling of 8 images (cond + uncond in one batch of 16, Euler).
Prints each ratio (PyTorch time / ours) and our training step's GFLOP/s as a fraction of the sgemm ceiling
measured in the same run of ours.
"""
import argparse, json, os, subprocess, sys, tempfile, time
import torch
from diffusers import FluxTransformer2DModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = dict(patch_size=1, in_channels=48, num_layers=2, num_single_layers=4, attention_head_dim=32,
              num_attention_heads=4, joint_attention_dim=384, pooled_projection_dim=384, guidance_embeds=False,
              axes_dims_rope=[8, 12, 12])
GRID = 8
TEXT = 16  # text tokens; --model takes its own


def best_time(fn, budget=1.0, min_reps=3):
    """Best wall seconds and best process-CPU seconds (all threads) per call."""
    fn()
    best, best_cpu, spent, reps = float("inf"), float("inf"), 0.0, 0
    while reps < min_reps or spent < budget:
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        dt = time.perf_counter() - t0
        best, best_cpu = min(best, dt), min(best_cpu, time.process_time() - c0)
        spent, reps = spent + dt, reps + 1
    return best, best_cpu


def torch_items(model):
    N = GRID * GRID
    img_ids = torch.zeros(N, 3)
    img_ids[:, 1] = torch.arange(GRID).repeat_interleave(GRID).float()
    img_ids[:, 2] = torch.arange(GRID).repeat(GRID).float()
    txt_ids = torch.zeros(TEXT, 3)
    g = torch.Generator().manual_seed(0)

    def inputs(b):
        return dict(hidden_states=torch.randn(b, N, 48, generator=g),
                    encoder_hidden_states=torch.randn(b, TEXT, 384, generator=g),
                    pooled_projections=torch.randn(b, 384, generator=g),
                    timestep=torch.rand(b, generator=g), img_ids=img_ids, txt_ids=txt_ids, return_dict=False)

    in1, in8 = inputs(1), inputs(8)

    def forward(inp):
        def run():
            with torch.inference_mode():
                model(**inp)
        return run

    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)
    x0 = torch.rand(32, N, 48, generator=g) * 2 - 1
    cap, pooled = torch.randn(32, TEXT, 384, generator=g), torch.randn(32, 384, generator=g)

    def train():
        t = torch.sigmoid(torch.randn(32))
        eps = torch.randn_like(x0)
        xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * eps
        out = model(hidden_states=xt, encoder_hidden_states=cap, pooled_projections=pooled, timestep=t,
                    img_ids=img_ids, txt_ids=txt_ids, return_dict=False)[0]
        loss = torch.nn.functional.mse_loss(out, eps - x0)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    prompts, uncond = torch.randn(8, TEXT, 384, generator=g), torch.randn(1, TEXT, 384, generator=g)
    p_pooled, u_pooled = torch.randn(8, 384, generator=g), torch.randn(1, 384, generator=g)
    enc = torch.cat([prompts, uncond.expand(8, -1, -1)])
    pool = torch.cat([p_pooled, u_pooled.expand(8, -1)])

    def sample():
        steps, w = 20, 4.0
        sigmas = torch.linspace(1, 1 / steps, steps).tolist() + [0.0]
        x = torch.randn(8, N, 48)
        with torch.inference_mode():
            for i in range(steps):
                v = model(hidden_states=torch.cat([x, x]), encoder_hidden_states=enc, pooled_projections=pool,
                          timestep=torch.full((16,), sigmas[i]), img_ids=img_ids, txt_ids=txt_ids,
                          return_dict=False)[0]
                vc, vu = v[:8], v[8:]
                x = x + (sigmas[i + 1] - sigmas[i]) * (vu + w * (vc - vu))

    return {"forward_b1": forward(in1), "forward_b8": forward(in8), "train_b32": train, "sample_8x20_cfg": sample}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build", "release", "erudiff-bench"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", help="a saved model folder (diffusers layout) instead of the default shape")
    a = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    global TEXT
    if a.model:
        model = FluxTransformer2DModel.from_pretrained(a.model).float()
        extra = os.path.join(a.model, "erudiff.json")
        if os.path.exists(extra):
            TEXT = json.load(open(extra)).get("text_tokens", TEXT)
        c = model.config
        print(f"model {a.model}: {c.num_layers} double + {c.num_single_layers} single blocks, "
              f"{c.num_attention_heads} x {c.attention_head_dim}, {TEXT} text tokens, "
              f"{sum(p.numel() for p in model.parameters()):,} parameters", file=sys.stderr)
    else:
        model = FluxTransformer2DModel(**CONFIG).float()
        with torch.no_grad():  # non-trivial weights everywhere (diffusers' init leaves nothing at zero anyway)
            for p in model.parameters():
                p.add_(0.01 * torch.randn_like(p))
    items = torch_items(model)
    names = list(items)
    torch_best = {n: float("inf") for n in names}
    torch_cpu = {n: float("inf") for n in names}
    ours_best = {}
    load_before = open("/proc/loadavg").read().split()[:3]
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        for r in range(a.rounds):
            for n in names:
                w, c = best_time(items[n], budget=0.6)
                torch_best[n], torch_cpu[n] = min(torch_best[n], w), min(torch_cpu[n], c)
            out = subprocess.run([a.bin, "flux", "--weights", tmp, "--text-tokens", str(TEXT), "--rounds", "1",
                                  "--json"], check=True, capture_output=True, text=True).stdout
            res = json.loads(out.strip().splitlines()[-1])
            for k, v in res.items():
                ours_best[k] = min(ours_best.get(k, float("inf")), v) if k.endswith("_ms") else \
                    max(ours_best.get(k, 0), v) if k == "sgemm_gflops" else v
            print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
    targets = {"forward_b1": 3.0, "forward_b8": 1.5, "train_b32": 1.5, "sample_8x20_cfg": 1.5}
    load_after = open("/proc/loadavg").read().split()[:3]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ours: erudiff-bench flux, 2 threads; "
          f"load average {' '.join(load_before)} before, {' '.join(load_after)} after")
    print(f"{'':18} {'PyTorch ms':>11} {'ours ms':>9} {'ratio':>7} {'target':>7}   "
          f"{'(CPU ms: PyTorch':>17} {'ours':>8} {'ratio)':>7}")
    for n in names:
        t, o = torch_best[n] * 1e3, ours_best[n + "_ms"]
        tc, oc = torch_cpu[n] * 1e3, ours_best[n + "_cpu_ms"]
        ratio = t / o
        print(f"{n:18} {t:11.2f} {o:9.2f} {ratio:6.2f}x {targets[n]:6.1f}x {'met   ' if ratio >= targets[n] else 'MISSED'}"
              f"   {tc:14.2f} {oc:8.2f} {tc / oc:6.2f}x")
    gf = ours_best["train_gflop"] / (ours_best["train_b32_ms"] * 1e-3)
    ceil = ours_best["sgemm_gflops"]
    frac = gf / ceil
    print(f"training step: {ours_best['train_gflop']:.2f} GFLOP in {ours_best['train_b32_ms']:.1f} ms = {gf:.1f} GFLOP/s, "
          f"{100 * frac:.1f}% of the sgemm ceiling {ceil:.1f} GFLOP/s (target 50%: {'met' if frac >= 0.5 else 'MISSED'})")
    print(f"PyTorch training step: {ours_best['train_gflop'] / torch_best['train_b32']:.1f} GFLOP/s "
          f"= {100 * ours_best['train_gflop'] / torch_best['train_b32'] / ceil:.1f}% of the same ceiling")


if __name__ == "__main__":
    main()
