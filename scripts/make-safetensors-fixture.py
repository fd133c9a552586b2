#!/usr/bin/env python3
"""Safetensors compatibility fixtures for Tests/TensorsTests (run with the python of scripts/ref-venv).

  make-safetensors-fixture.py            writes, with the reference `safetensors` package and torch,
                                         Fixtures/safetensors-reference.safetensors (F32, F16 and BF16
                                         tensors incl. zeros, subnormals, infinities, a scalar, an empty
                                         tensor, and metadata) and Fixtures/safetensors-reference.json
                                         (each tensor widened to float32 by torch, as uint32 bit patterns).
  make-safetensors-fixture.py --check F  loads F, a file written by erudiff's Swift writer from the
                                         reference file, with the `safetensors` package, and checks it holds
                                         the same tensors as float32 (bit for bit), the same metadata, and a
                                         header padded with spaces to a multiple of 8. Exit status 0 = ok.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "Tests", "TensorsTests", "Fixtures")
REFERENCE = os.path.join(FIXTURES, "safetensors-reference.safetensors")
EXPECTED = os.path.join(FIXTURES, "safetensors-reference.json")
METADATA = {"format": "pt", "made_by": "scripts/make-safetensors-fixture.py", "unicode": "naïve café ✓ 🙂"}


def from_bits(bits, dtype):
    """A 1-D tensor of `dtype` holding the given bit patterns."""
    if dtype == torch.float32:
        return torch.from_numpy(np.array(bits, dtype=np.uint32).view(np.int32)).view(torch.float32)
    return torch.from_numpy(np.array(bits, dtype=np.uint16).view(np.int16)).view(dtype)


def not_nan16(rng, n, exponent_mask):
    out = []
    while len(out) < n:
        b = int(rng.integers(0, 1 << 16))
        if (b & exponent_mask) != exponent_mask:  # all-ones exponent with a mantissa would be NaN or inf
            out.append(b)
    return out


def reference_tensors():
    rng = np.random.default_rng(20240611)
    torch.manual_seed(7)
    f32_special = [0x00000000, 0x80000000, 0x00000001, 0x007FFFFF, 0x00800000, 0x7F7FFFFF,
                   0x7F800000, 0xFF800000, 0x3F800000, 0x40490FDB, 0xC0490FDB, 0x3DCCCCCD]
    f16_special = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x3C00, 0xBC00, 0x7BFF,
                   0xFBFF, 0x7C00, 0xFC00, 0x3555, 0x0200]
    bf16_special = [0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x0080, 0x3F80, 0xBF80, 0x7F7F, 0xFF7F,
                    0x7F80, 0xFF80, 0x4049, 0x3DCD]
    return {
        "f32.special": from_bits(f32_special, torch.float32).reshape(3, 4),
        "f32.random": torch.randn(5, 7),
        "f32.scalar": torch.tensor(2.5, dtype=torch.float32),
        "f32.empty": torch.zeros(0, 3, dtype=torch.float32),
        "f16.values": from_bits(f16_special + not_nan16(rng, 22, 0x7C00), torch.float16),  # 37: SIMD + tail
        "f16.matrix": torch.randn(3, 5).to(torch.float16),
        "bf16.values": from_bits(bf16_special + not_nan16(rng, 27, 0x7F80), torch.bfloat16),  # 41
        "bf16.matrix": torch.randn(4, 6).to(torch.bfloat16),
    }


def f32_bits(t):
    return [int(x) & 0xFFFFFFFF for x in t.to(torch.float32).reshape(-1).view(torch.int32).tolist()]


def make():
    os.makedirs(FIXTURES, exist_ok=True)
    tensors = reference_tensors()
    save_file(tensors, REFERENCE, metadata=METADATA)
    expected = {
        "metadata": METADATA,
        "tensors": {name: {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "f32_bits": f32_bits(t)}
                    for name, t in sorted(tensors.items())},
    }
    with open(EXPECTED, "w") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write("\n")
    # The reference package reads back what it wrote.
    back = load_file(REFERENCE)
    assert all(back[k].dtype == t.dtype and back[k].shape == t.shape and f32_bits(back[k]) == f32_bits(t) for k, t in tensors.items())
    print(f"wrote {REFERENCE} ({os.path.getsize(REFERENCE)} bytes) and {EXPECTED}")


def check(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = raw[8:8 + n]
    assert (8 + n) % 8 == 0, f"data section starts at {8 + n}, not a multiple of 8"
    assert header.rstrip(b" ").endswith(b"}"), "header is not JSON padded with spaces"
    got = load_file(path)
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    assert metadata == METADATA, f"metadata {metadata!r} != {METADATA!r}"
    want = reference_tensors()
    ref = load_file(REFERENCE)
    assert sorted(got) == sorted(ref), f"names {sorted(got)} != {sorted(ref)}"
    for name, r in ref.items():
        g = got[name]
        assert g.dtype == torch.float32, f"{name}: dtype {g.dtype}"
        assert list(g.shape) == list(r.shape), f"{name}: shape {list(g.shape)} != {list(r.shape)}"
        assert f32_bits(g) == f32_bits(r), f"{name}: values differ"
        assert f32_bits(g) == f32_bits(want[name]), f"{name}: differs from the regenerated reference"
    print(f"ok: safetensors {__import__('safetensors').__version__} reads {path}: "
          f"{len(got)} float32 tensors bit-exact, metadata equal, header {n} bytes padded to 8")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    elif len(sys.argv) == 1:
        make()
    else:
        sys.exit(__doc__)
