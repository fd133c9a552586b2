"""`erudiff-train sample` (the command that measures a model on explicit captions without a daemon): its
summary counts right images per prompt, per stated size and per named shape, and the three agree."""

import os
import re
import subprocess

import helpers

LARGE = "a large red circle on a white background"
SMALL = "a small blue square on a yellow background"
UNSAID = "a green triangle on a white background"
IMPLICIT = "the flag of Japan"


def train_binary():
    exe = os.path.join(os.path.dirname(helpers.daemon_binary()), "erudiff-train")
    assert os.access(exe, os.X_OK), f"no erudiff-train beside erudiffd ({exe}); scripts/test-python builds both"
    return exe


def test_sample_summary_counts_by_prompt_size_and_shape(mini_model, workdir):
    out = os.path.join(workdir, "grid.png")
    args = [train_binary(), "sample", "--model", mini_model, "--out", out, "--count", "3", "--steps", "6",
            "--seed", "5"]
    for p in (LARGE, SMALL, UNSAID, IMPLICIT):
        args += ["--prompt", p]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    per_prompt = {p: int(m) for p, m in re.findall(r"^  (.+) \((\d)/3 ok\)$", text, re.M)}
    assert set(per_prompt) == {LARGE, SMALL, UNSAID}, text   # the implicit prompt is not checked
    assert re.search(r"^  %s$" % re.escape(IMPLICIT), text, re.M), text

    total = sum(per_prompt.values())
    assert re.search(r"verified right: %d/9 \(" % total, text), text

    by_size = dict((k, (int(a), int(b))) for k, a, b in
                   re.findall(r"(small|large|unsaid) (\d+)/(\d+)", re.search(r"right, by stated size: (.*)", text).group(1)))
    assert by_size == {"small": (per_prompt[SMALL], 3), "large": (per_prompt[LARGE], 3),
                       "unsaid": (per_prompt[UNSAID], 3)}, text

    by_shape = dict((k, (int(a), int(b))) for k, a, b in
                    re.findall(r"(\w+) (\d+)/(\d+)", re.search(r"right, by shape: (.*)", text).group(1)))
    assert by_shape == {"circle": (per_prompt[LARGE], 3), "square": (per_prompt[SMALL], 3),
                        "triangle": (per_prompt[UNSAID], 3)}, text

    wrong = dict((k, int(n)) for k, n in re.findall(r"(\w+) (\d+)", re.search(r"wrong, by attribute \(of 9\): (.*)", text).group(1)))
    assert set(wrong) >= {"shape", "color", "size"} and all(n <= 9 - total for n in wrong.values()), text


def test_strays_grid_adapter_and_clean_counts_cover_every_prompt(mini_model, engine, workdir):
    """`--strays` writes the images with the most stray pixels; the outline summary counts every image,
    implicit prompts too; `--adapter` applies a PEFT file (one the daemon saved), which changes the
    implicit prompt's images."""
    with engine.connect() as c:
        r = c.call("matchDistributions", {"pairs": [{"implicit": IMPLICIT, "explicit": LARGE}], "steps": 2, "batchSize": 1,
                                          "anchors": {"perPair": 1, "steps": 2}, "dislocation": False, "freshAdapter": True},
                   timeout=300)
        assert "result" in r, r
        adapter = os.path.join(workdir, "a.safetensors")
        assert "result" in c.call("adapters/save", {"path": adapter})

    def run(*extra):
        out, strays = os.path.join(workdir, "g.png"), os.path.join(workdir, "s.png")
        args = [train_binary(), "sample", "--model", mini_model, "--out", out, "--count", "2", "--steps", "4",
                "--seed", "5", "--prompt", IMPLICIT, "--prompt", LARGE, "--strays", strays, *extra]
        p = subprocess.run(args, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        with open(strays, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        m = re.search(r"clean (\d+) of (\d+) images \(over 2% / 5% / 10% stray: (\d+) / (\d+) / (\d+)\)", p.stdout)
        assert m, p.stdout
        clean, n, o2, o5, o10 = map(int, m.groups())
        assert n == 4 and clean + o2 == n and o2 >= o5 >= o10, p.stdout   # both prompts' images, the limit 2%
        with open(out, "rb") as f:
            return f.read()

    assert run() != run("--adapter", adapter)
    bad = subprocess.run([train_binary(), "sample", "--model", mini_model, "--out", os.path.join(workdir, "x.png"),
                          "--prompt", IMPLICIT, "--adapter", os.path.join(workdir, "missing.safetensors")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "missing.safetensors" in bad.stderr, bad.stderr
