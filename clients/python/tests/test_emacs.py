"""The Emacs package clients/emacs/erudiff.el (on Emacs's own jsonrpc.el, LSP framing) against the real
daemon: its ERT tests (clients/emacs/erudiff-tests.el) run in `emacs --batch` — a sampled image lands
in a buffer as a PNG of the model's size, progress reaches the echo area, a quit cancels the request —
and the package byte-compiles without a warning. Emacs is Debian's emacs-nox (scripts/setup)."""

import os
import re
import shutil
import subprocess

from erudiff import Client
from helpers import REPO

EMACS_DIR = os.path.join(REPO, "clients", "emacs")


def emacs():
    exe = shutil.which("emacs")
    assert exe, "emacs is not installed: scripts/setup installs Debian's emacs-nox"
    return exe


def test_ert_suite_against_the_daemon(engine, tmp_path):
    reference = str(tmp_path / "reference.png")
    with Client(engine.socket_path) as c:
        c.sample("the flag of Japan", seed=3, steps=4).images[0].save(reference)
    env = dict(os.environ, ERUDIFF_SOCKET=engine.socket_path, ERUDIFF_TEST_REFERENCE_PNG=reference,
               HOME=str(tmp_path))
    r = subprocess.run([emacs(), "--batch", "-Q", "-L", EMACS_DIR, "-l", "erudiff-tests",
                        "-f", "ert-run-tests-batch-and-exit"], env=env, cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    report = "\n".join(line for line in out.splitlines() if not re.match(r"erudiff: \S+ \d+% ", line))
    assert r.returncode == 0, f"the ERT suite failed:\n{report}"
    with open(os.path.join(EMACS_DIR, "erudiff-tests.el")) as f:
        defined = len(re.findall(r"^\(ert-deftest ", f.read(), re.M))
    m = re.search(r"Ran (\d+) tests, (\d+) results as expected, (\d+) unexpected", out)
    assert m and int(m.group(1)) == int(m.group(2)) == defined and m.group(3) == "0", report


def test_the_package_byte_compiles_without_warnings(tmp_path):
    for name in ("erudiff.el", "erudiff-tests.el"):
        shutil.copy(os.path.join(EMACS_DIR, name), tmp_path)
    r = subprocess.run([emacs(), "--batch", "-Q", "-L", ".", "--eval", "(setq byte-compile-error-on-warn t)",
                        "-f", "batch-byte-compile", "erudiff.el", "erudiff-tests.el"],
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "erudiff.elc").exists()
