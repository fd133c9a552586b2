"""docs/notebook.ipynb: executed headless by scripts/notebook (nbclient, in the notebook's own venv from
PyPI) against the real daemon, with no error and with its pictures, progress bar and before/after table;
and the committed file carries such a run's outputs (what GitHub shows). No daemon runs: the notebook's
client starts one. The run is skipped, saying so, only when the venv is not made yet and the package
index is unreachable."""

import base64
import json
import os
import re
import subprocess
import time

import pytest

import helpers
from erudiff import Client, Image
from helpers import REPO, pypi_unreachable

NOTEBOOK = os.path.join(REPO, "docs", "notebook.ipynb")
SCRIPT = os.path.join(REPO, "scripts", "notebook")


def check_executed(path):
    """Every code cell ran once, in order, without an error; its PNGs are pictures of a modest size; the
    progress bar reached 100%; the before/after table has both splits; the file stays small."""
    with open(path) as f:
        nb = json.load(f)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), "not a complete run"
    outputs = [o for c in code for o in c["outputs"]]
    errors = [f"{o['ename']}: {o['evalue']}" for o in outputs if o["output_type"] == "error"]
    assert not errors, errors

    def text(o, kind):
        value = o.get("data", {}).get(kind, "") if o["output_type"] != "stream" else o["text"]
        return "".join(value) if isinstance(value, list) else value

    pngs = [base64.b64decode(text(o, "image/png")) for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 4, f"{len(pngs)} pictures: the sample grid, the chart, the before/after grid, the projection"
    for png in pngs:
        size = Image.png_size(png)
        assert size and 100 <= min(size) and max(size) <= 1000, size
        assert len(png) < 150_000, f"a {len(png)}-byte picture"
    plain = "\n".join(text(o, "text/plain") for o in outputs)
    assert re.search(r"matchDistributions █{30} 100%", plain), "the progress bar did not reach 100%"
    markdown = "\n".join(text(o, "text/markdown") for o in outputs)
    rows = [line for line in markdown.splitlines() if re.match(r"\| (train|test-paraphrase) \| \d+ \|", line)]
    assert len(rows) == 2 and all(line.count("→") == 4 for line in rows), markdown
    assert os.path.getsize(path) < 400_000
    return nb


def test_the_committed_notebook_carries_its_outputs():
    check_executed(NOTEBOOK)


def venv_ready(venv):
    python = os.path.join(venv, "bin", "python")
    return os.path.exists(python) and subprocess.run(
        [python, "-c", "import nbclient, ipykernel, matplotlib, numpy"], capture_output=True).returncode == 0


def test_the_notebook_starts_the_daemon_and_runs_headless(place, mini_model, tmp_path):
    venv = os.environ.get("ERUDIFF_NOTEBOOK_VENV") or os.path.join(REPO, ".venv-notebook")
    if not venv_ready(venv):
        why = pypi_unreachable("nbclient")
        if why:
            pytest.skip(f"{why}: the notebook's venv ({venv}) cannot be made")
    # No daemon answers on the socket: the notebook's Client() starts one (the binary under test, serving
    # the test's copy of mini).
    env = place.env(ERUDIFFD_ARGS=f"--model mini={mini_model} --threads 2", ERUDIFF_NOTEBOOK_VENV=venv)
    del env["PYTHONPATH"]      # the kernel imports the client installed in the venv
    assert not os.path.exists(place.socket_path)
    out = str(tmp_path / "notebook.ipynb")
    start = time.monotonic()
    r = subprocess.run([SCRIPT, "-o", out], env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, f"scripts/notebook failed after {time.monotonic() - start:.0f} s:\n{r.stderr[-6000:]}"
    nb = check_executed(out)
    with open(NOTEBOOK) as g:
        assert [c["source"] for c in nb["cells"]] == [c["source"] for c in json.load(g)["cells"]]
    [pid] = helpers.daemon_pids(place.socket_path)
    first = "".join("".join(o.get("text", "")) for o in next(c for c in nb["cells"] if c["cell_type"] == "code")["outputs"])
    assert f"started erudiffd (pid {pid}) on {place.socket_path}" in first, first
    # The notebook cleaned up after itself: its model and that model's adapter checkpoint are gone.
    with Client(place.socket_path, autostart=False) as c:
        assert [m["name"] for m in c.status()["models"]] == ["mini"]
    assert not os.path.exists(os.path.join(place.state, "erudiff", "adapters", "notebook.safetensors"))
