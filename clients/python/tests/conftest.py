import os
import shutil
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
