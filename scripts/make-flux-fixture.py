#!/usr/bin/env python3
"""Golden fixtures for the Swift FLUX transformer (Tests/ModelsTests/Fixtures/flux-*/).

Run with the reference venv:  $(scripts/ref-venv) scripts/make-flux-fixture.py [--check-swift BIN]

For each of two tiny random configs it builds diffusers' FluxTransformer2DModel, perturbs every weight
away from its init (norm weights too), and writes into Tests/ModelsTests/Fixtures/flux-<name>/:
  config.json         diffusers' config (what save_pretrained writes)
  model.safetensors   the weights, diffusers' tensor names, float32
  lora.safetensors    a PEFT LoRA adapter (rank 4, alpha 8, non-zero B), PEFT names `<module>.lora_A.weight`
  io.safetensors      inputs, outputs and gradients:
    in.*              hidden_states, encoder_hidden_states, pooled_projections, timestep, img_ids, txt_ids,
                      (guidance), R (the fixed loss is sum(out * R))
    out.sample        the transformer output
    grad.input.*      d loss / d inputs (hidden_states, encoder_hidden_states, pooled_projections)
    grad.param.<name> d loss / d parameter for the top-level modules and the first block of each kind
    lora.out.sample, lora.grad.input.*, lora.grad.<name>.lora_A.weight / lora_B.weight
                      the same with the adapter on and the base frozen (every LoRA parameter's gradient)
The reference runs in float64 (diffusers' own code, model.double()); results are stored as float32.
A: 4x4 packing (in_channels 48, 8x8 grid = 64 image tokens); B: 2x2 packing (in_channels 12, 16x16 grid =
256 image tokens), guidance embedding on, widths that are not multiples of 8, non-zero text ids.

--check-swift BIN runs `BIN flux-export <fixture-a> <tmpdir>` (our Swift code: random init, save, forward
on fixture A's inputs, a random LoRA adapter, forward with it) and checks that diffusers loads the saved
checkpoint and the adapter and gives the same outputs.
"""
import argparse, json, os, subprocess, sys, tempfile
import torch
from diffusers import FluxTransformer2DModel
from peft import LoraConfig, inject_adapter_in_model, get_peft_model_state_dict, set_peft_model_state_dict
from safetensors import safe_open
from safetensors.torch import save_file, load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures")

CONFIGS = {
    "a": dict(config=dict(patch_size=1, in_channels=48, num_layers=1, num_single_layers=2,
                          attention_head_dim=12, num_attention_heads=2, joint_attention_dim=24,
                          pooled_projection_dim=20, guidance_embeds=False, axes_dims_rope=[4, 4, 4]),
              batch=2, text=7, grid=(8, 8), seed=1, text_ids="zero"),
    "b": dict(config=dict(patch_size=1, in_channels=12, num_layers=2, num_single_layers=1,
                          attention_head_dim=10, num_attention_heads=2, joint_attention_dim=16,
                          pooled_projection_dim=12, guidance_embeds=True, axes_dims_rope=[2, 4, 4]),
              batch=2, text=5, grid=(16, 16), seed=2, text_ids="counting"),
}

LORA_SUFFIXES = ["attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "attn.add_q_proj", "attn.add_k_proj",
                 "attn.add_v_proj", "attn.to_add_out", "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj",
                 "ff_context.net.2", "proj_mlp", "proj_out"]


def lora_targets(model):
    """Full module names of every LoRA target (block-level only: the top-level proj_out is not one)."""
    names = []
    for name, mod in model.named_modules():
        if not isinstance(mod, torch.nn.Linear):
            continue
        if not (name.startswith("transformer_blocks.") or name.startswith("single_transformer_blocks.")):
            continue
        if any(name.endswith("." + s) for s in LORA_SUFFIXES):
            names.append(name)
    return names


def perturb(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight") and p.ndim == 1:   # RMSNorm weights (init 1)
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
            else:  # default nn.Linear init, then a random perturbation so nothing sits at a special value
                p.add_(0.05 * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def inputs_for(spec, cfg, gen):
    B, L = spec["batch"], spec["text"]
    gh, gw = spec["grid"]
    N = gh * gw
    x = torch.randn(B, N, cfg["in_channels"], generator=gen)
    enc = torch.randn(B, L, cfg["joint_attention_dim"], generator=gen)
    enc[:, L - 2:] = 0  # pad positions are zeroed by our text encoder
    pooled = torch.randn(B, cfg["pooled_projection_dim"], generator=gen)
    t = torch.tensor([0.3, 0.85][:B], dtype=torch.float32)
    img_ids = torch.zeros(N, 3)
    img_ids[:, 1] = torch.arange(gh).repeat_interleave(gw).float()
    img_ids[:, 2] = torch.arange(gw).repeat(gh).float()
    txt_ids = torch.zeros(L, 3)
    if spec["text_ids"] == "counting":
        txt_ids[:, 0] = torch.arange(L).float()
    d = {"hidden_states": x, "encoder_hidden_states": enc, "pooled_projections": pooled, "timestep": t,
         "img_ids": img_ids, "txt_ids": txt_ids}
    if cfg["guidance_embeds"]:
        d["guidance"] = torch.tensor([3.5, 1.25][:B], dtype=torch.float32)
    out_ch = cfg.get("out_channels") or cfg["in_channels"]
    d["R"] = torch.randn(B, N, out_ch * cfg["patch_size"] ** 2, generator=gen)
    return d


def run(model, inp, dtype, grads_for_inputs=True):
    """Forward + backward of sum(out * R) in `dtype`; returns output and input gradients."""
    model = model.to(dtype)
    args = {}
    for k in ["hidden_states", "encoder_hidden_states", "pooled_projections"]:
        args[k] = inp[k].to(dtype).clone().requires_grad_(grads_for_inputs)
    args["timestep"] = inp["timestep"].to(dtype)
    if "guidance" in inp:
        args["guidance"] = inp["guidance"].to(dtype)
    out = model(**args, img_ids=inp["img_ids"], txt_ids=inp["txt_ids"], return_dict=False)[0]
    if not grads_for_inputs:
        return out.detach(), {}
    loss = (out * inp["R"].to(dtype)).sum()
    loss.backward()
    g = {k: args[k].grad for k in ["hidden_states", "encoder_hidden_states", "pooled_projections"]}
    return out.detach(), g


def keep_param_grad(name):
    if name.startswith("transformer_blocks."):
        return name.startswith("transformer_blocks.0.")
    if name.startswith("single_transformer_blocks."):
        return name.startswith("single_transformer_blocks.0.")
    return True


def build(name, spec):
    cfg = spec["config"]
    gen = torch.Generator().manual_seed(spec["seed"])
    torch.manual_seed(spec["seed"])
    model = FluxTransformer2DModel(**cfg).float()
    perturb(model, gen)
    inp = inputs_for(spec, cfg, gen)
    out_dir = os.path.join(FIXTURES, f"flux-{name}")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(dict(model.config), f, indent=2, sort_keys=True, default=list)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(out_dir, "model.safetensors"))

    # float32 run, only to report how far diffusers itself is from its float64 result.
    out32, _ = run(model, inp, torch.float32)
    model.zero_grad(set_to_none=True)
    out, gin = run(model, inp, torch.float64)
    io = {f"in.{k}": v.float().contiguous() for k, v in inp.items()}
    io["out.sample"] = out.float()
    for k, v in gin.items():
        io[f"grad.input.{k}"] = v.float()
    for pname, p in model.named_parameters():
        if keep_param_grad(pname):
            io[f"grad.param.{pname}"] = p.grad.float().contiguous()
    rel32 = ((out32.double() - out).norm() / out.norm()).item()

    # LoRA with PEFT: rank 4, alpha 8, on every attention and MLP projection of both block kinds.
    model.zero_grad(set_to_none=True)
    targets = lora_targets(model)
    lcfg = LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=True)
    inject_adapter_in_model(lcfg, model)
    model = model.double()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "lora_B" in pname:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
    for pname, p in model.named_parameters():
        p.requires_grad_("lora_" in pname)
    lora_sd = {k: v.float().contiguous() for k, v in get_peft_model_state_dict(model).items()}
    save_file(lora_sd, os.path.join(out_dir, "lora.safetensors"),
              metadata={"rank": "4", "alpha": "8", "format": "peft"})
    lout, lgin = run(model, inp, torch.float64)
    io["lora.out.sample"] = lout.float()
    for k, v in lgin.items():
        io[f"lora.grad.input.{k}"] = v.float()
    for pname, p in model.named_parameters():
        if "lora_" in pname:
            io["lora.grad." + pname.replace(".default", "")] = p.grad.float().contiguous()
    save_file(io, os.path.join(out_dir, "io.safetensors"))
    for f in os.listdir(out_dir):
        os.chmod(os.path.join(out_dir, f), 0o644)
    size = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
    print(f"flux-{name}: {sum(p.numel() for n, p in model.named_parameters() if 'lora_' not in n)} params, "
          f"{len(targets)} LoRA targets, |out|={out.norm():.3f}, diffusers f32 vs f64 rel err {rel32:.2e}, "
          f"{size / 1024:.0f} KiB")


def schedules():
    """diffusers' FLUX sigma schedules (FlowMatchEulerDiscreteScheduler fed the pipeline's linspace) and one
    Euler step, for Tests/DiffusionTests (JSON)."""
    import numpy as np
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift
    out = {"static": [], "dynamic": []}
    for steps, shift in [(20, 1.0), (20, 3.0), (7, 2.0), (1, 1.0)]:
        sch = FlowMatchEulerDiscreteScheduler(shift=shift)
        sch.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps))
        out["static"].append({"steps": steps, "shift": shift, "sigmas": sch.sigmas.tolist()})
    for steps, tokens in [(20, 64), (10, 1024)]:
        sch = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                              base_image_seq_len=256, max_image_seq_len=4096)
        mu = calculate_shift(tokens, 256, 4096, 0.5, 1.15)
        sch.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu)
        out["dynamic"].append({"steps": steps, "image_tokens": tokens, "mu": mu, "sigmas": sch.sigmas.tolist()})
    g = torch.Generator().manual_seed(3)
    sch = FlowMatchEulerDiscreteScheduler(shift=3.0)
    sch.set_timesteps(sigmas=np.linspace(1.0, 1 / 5, 5))
    x, v = torch.randn(10, generator=g), torch.randn(10, generator=g)
    for _ in range(2):  # take the third step (index 2)
        sch.step(v, sch.timesteps[sch.step_index if sch.step_index is not None else 0], x)
    y = sch.step(v, sch.timesteps[2], x).prev_sample
    out["euler"] = {"steps": 5, "shift": 3.0, "index": 2, "x": x.tolist(), "v": v.tolist(), "next": y.tolist()}
    d = os.path.join(ROOT, "Tests", "DiffusionTests", "Fixtures")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "flux-schedules.json"), "w") as f:
        json.dump(out, f, indent=1)
    print("flux-schedules.json:", len(out["static"]) + len(out["dynamic"]), "schedules and one Euler step")


def check_swift(binary):
    """Our Swift export (checkpoint + LoRA adapter) must load in diffusers and give the same outputs."""
    fixture = os.path.join(FIXTURES, "flux-a")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([binary, "flux-export", fixture, tmp], check=True)
        model = FluxTransformer2DModel.from_pretrained(tmp).double()  # config.json + diffusion_pytorch_model.safetensors
        io = load_file(os.path.join(fixture, "io.safetensors"))
        inp = {k[3:]: v for k, v in io.items() if k.startswith("in.")}
        ours = load_file(os.path.join(tmp, "outputs.safetensors"))
        with torch.no_grad():
            out, _ = run(model, inp, torch.float64, grads_for_inputs=False)
        rel = ((ours["out.sample"].double() - out).norm() / out.norm()).item()
        print(f"swift checkpoint in diffusers: rel err {rel:.2e}")
        lora_sd = load_file(os.path.join(tmp, "lora.safetensors"))
        with safe_open(os.path.join(tmp, "lora.safetensors"), "pt") as fh:
            meta = {k: float(v) for k, v in fh.metadata().items() if k in ("rank", "alpha")}
        targets = sorted({k.rsplit(".lora_", 1)[0] for k in lora_sd})
        inject_adapter_in_model(LoraConfig(r=int(meta["rank"]), lora_alpha=meta["alpha"], target_modules=targets), model)
        model = model.double()
        res = set_peft_model_state_dict(model, lora_sd)
        unexpected = getattr(res, "unexpected_keys", [])
        missing = [k for k in getattr(res, "missing_keys", []) if "lora_" in k]
        lout, _ = run(model, inp, torch.float64, grads_for_inputs=False)
        lrel = ((ours["lora.out.sample"].double() - lout).norm() / lout.norm()).item()
        print(f"swift LoRA adapter in PEFT: rel err {lrel:.2e} ({len(targets)} modules, "
              f"unexpected {len(unexpected)}, missing {len(missing)})")
        ok = rel < 1e-4 and lrel < 1e-4 and not unexpected and not missing
        print("swift export check:", "OK" if ok else "FAILED")
        return ok


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-swift", metavar="BIN", help="path of the built erudiff-train executable")
    ap.add_argument("--only-check", action="store_true", help="skip regenerating the fixtures")
    a = ap.parse_args()
    torch.set_num_threads(2)
    if not a.only_check:
        for n, s in CONFIGS.items():
            build(n, s)
        schedules()
    if a.check_swift and not check_swift(a.check_swift):
        sys.exit(1)
