"""The Emacs package clients/emacs/erudiff.el (on Emacs's own jsonrpc.el, LSP framing) against the real
daemon: its ERT tests (clients/emacs/erudiff-tests.el) run in `emacs --batch` — a sampled image lands
in a buffer as a PNG of the model's size, progress reaches the echo area, a quit cancels the request,
jsonrpc.el's `"params": null` is taken as none — then, with no daemon running, the first sample starts
one through `erudiff daemon start`; and the package byte-compiles without a warning. Emacs is Debian's
emacs-nox (scripts/setup)."""

import os
import re
import shutil
import subprocess

import pytest

import helpers
from erudiff import Client
from helpers import REPO

EMACS_DIR = os.path.join(REPO, "clients", "emacs")
ERT_FILE = os.path.join(EMACS_DIR, "erudiff-tests.el")


def emacs():
    exe = shutil.which("emacs")
    assert exe, "emacs is not installed: scripts/setup installs Debian's emacs-nox"
    return exe


@pytest.fixture(scope="module")
def reference(engine, tmp_path_factory):
    """The PNG the Python client gets for the prompt and seed the ERT tests sample."""
    path = str(tmp_path_factory.mktemp("emacs") / "reference.png")
    with Client(engine.socket_path) as c:
        c.sample("the flag of Japan", seed=3, steps=4).images[0].save(path)
    return path


def run_ert(selector, env, cwd):
    """Runs the ERT tests that ``selector`` picks; asserts that each ran and passed."""
    r = subprocess.run([emacs(), "--batch", "-Q", "-L", EMACS_DIR, "-l", "erudiff-tests",
                        "--eval", f"(ert-run-tests-batch-and-exit '{selector})"], env=env, cwd=cwd,
                       capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    report = "\n".join(line for line in out.splitlines() if not re.match(r"erudiff: \S+ \d+% ", line))
    assert r.returncode == 0, f"the ERT suite failed:\n{report}"
    m = re.search(r"Ran (\d+) tests, (\d+) results as expected, (\d+) unexpected", out)
    assert m and m.group(1) == m.group(2) and m.group(3) == "0", report
    return int(m.group(1))


def ert_tests():
    """(all, tagged on-demand): the ERT tests the file defines."""
    with open(ERT_FILE) as f:
        text = f.read()
    return len(re.findall(r"^\(ert-deftest ", text, re.M)), len(re.findall(r"^  :tags '\(on-demand\)", text, re.M))


def test_ert_suite_against_the_daemon(engine, reference, tmp_path):
    env = dict(os.environ, ERUDIFF_SOCKET=engine.socket_path, ERUDIFF_TEST_REFERENCE_PNG=reference,
               HOME=str(tmp_path))
    defined, on_demand = ert_tests()
    assert run_ert("(not (tag on-demand))", env, str(tmp_path)) == defined - on_demand


def test_emacs_starts_the_daemon_on_demand(place, mini_model, reference, tmp_path):
    env = place.env(ERUDIFFD_ARGS=f"--model mini={mini_model} --threads 2", ERUDIFF_TEST_REFERENCE_PNG=reference,
                    HOME=str(tmp_path))
    assert not os.path.exists(place.socket_path)
    assert run_ert("(tag on-demand)", env, str(tmp_path)) == ert_tests()[1] == 1
    [pid] = helpers.daemon_pids(place.socket_path)
    assert "erudiff (shell" in place.log_text(), "not started by the shell client"
    with Client(place.socket_path, autostart=False) as c:
        assert c.status()["pid"] == pid


def test_the_package_byte_compiles_without_warnings(tmp_path):
    for name in ("erudiff.el", "erudiff-tests.el"):
        shutil.copy(os.path.join(EMACS_DIR, name), tmp_path)
    r = subprocess.run([emacs(), "--batch", "-Q", "-L", ".", "--eval", "(setq byte-compile-error-on-warn t)",
                        "-f", "batch-byte-compile", "erudiff.el", "erudiff-tests.el"],
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "erudiff.elc").exists()
