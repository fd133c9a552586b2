import os
import shutil
import signal
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))   # the erudiff package

import helpers  # noqa: E402


@pytest.fixture
def workdir():
    d = helpers.tempdir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def start(workdir):
    """Starts daemons for a test: ``start(*args, **kw)``; all are stopped at the end, and each must
    still be alive then unless the test stopped it (a crash fails the test)."""
    started = []

    def _start(*args, **kw):
        d = helpers.Daemon(workdir, *args, **kw)
        started.append(d)
        return d

    yield _start
    crashed = []
    for d in started:
        if d.proc.poll() is not None and not getattr(d, "expected_exit", False):
            crashed.append((d.proc.returncode, d.log()))
        d.stop()
    assert not crashed, f"erudiffd exited unexpectedly: {crashed}"


@pytest.fixture
def daemon(start):
    return start()


@pytest.fixture(scope="session")
def contract():
    return helpers.Contract()


@pytest.fixture(scope="session")
def mini_model(tmp_path_factory):
    """A stable copy of the bundled model (models/mini, or $ERUDIFF_TEST_MODEL): the original may be
    rewritten while tests run (pretraining), and tests must not write next to it."""
    src = os.environ.get("ERUDIFF_TEST_MODEL") or os.path.join(helpers.REPO, "models", "mini")
    dst = str(tmp_path_factory.mktemp("model") / "mini")
    os.makedirs(dst)
    for name in ("config.json", "diffusion_pytorch_model.safetensors", "erudiff.json"):
        shutil.copy(os.path.join(src, name), dst)
    return dst


@pytest.fixture(scope="module")
def engine(mini_model, tmp_path_factory):
    """One daemon serving the copy of mini, shared by a test module (model loads and caches once)."""
    wd = str(tmp_path_factory.mktemp("engine"))
    d = helpers.Daemon(wd, "--threads", "2", model=mini_model)
    yield d
    alive = d.alive()
    d.stop()
    assert alive, f"erudiffd died:\n{d.log()}"


@pytest.fixture
def place(workdir, monkeypatch):
    """A private socket and state folder for the daemons the clients start; those daemons are stopped
    at the end (SIGTERM, then SIGKILL)."""

    class Place:
        socket_path = os.path.join(workdir, "run", "erudiffd.sock")
        state = os.path.join(workdir, "state")
        log = os.path.join(workdir, "state", "erudiff", "erudiffd.log")

        def env(self, **extra):
            e = dict(os.environ, XDG_STATE_HOME=self.state, ERUDIFF_SOCKET=self.socket_path,
                     ERUDIFFD=helpers.daemon_binary(), PYTHONPATH=os.path.dirname(HERE))
            for k in ("ERUDIFF_NO_AUTOSTART", "ERUDIFF_IDLE_EXIT", "ERUDIFFD_ARGS"):
                e.pop(k, None)
            e.setdefault("ERUDIFFD_ARGS", "--no-default-model")
            e.update(extra)
            return e

        def use_in_process(self, **extra):
            for k, v in self.env(**extra).items():
                monkeypatch.setenv(k, v)
            for k in ("ERUDIFF_NO_AUTOSTART", "ERUDIFF_IDLE_EXIT"):
                if k not in extra:
                    monkeypatch.delenv(k, raising=False)

        def log_text(self):
            with open(self.log) as f:
                return f.read()

    p = Place()
    yield p
    for pid in helpers.daemon_pids(workdir):
        os.kill(pid, signal.SIGTERM)
        if not helpers.wait_gone(pid, 20):
            os.kill(pid, signal.SIGKILL)
