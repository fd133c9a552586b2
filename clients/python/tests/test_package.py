"""clients/python as a package (pyproject.toml): `pip install` of the folder into a fresh venv, and of a
wheel built from it into another, each giving `import erudiff`, `python -m erudiff` and the `erudiff-py`
command, which then talk to the real daemon. The folder is copied first, so that the build (setuptools
writes build/ and *.egg-info beside pyproject.toml) leaves the checkout untouched. Skipped, saying so,
only when the package index is unreachable (pip needs setuptools from it to build)."""

import json
import os
import shutil
import subprocess
import zipfile

import pytest

from helpers import HERE, clean_env, pypi_unreachable, venv

PACKAGE = os.path.dirname(HERE)     # clients/python


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    why = pypi_unreachable("setuptools")
    if why:
        pytest.skip(f"{why}: `pip install ./clients/python` cannot be tested here")
    dst = str(tmp_path_factory.mktemp("package") / "python")
    shutil.copytree(PACKAGE, dst, ignore=shutil.ignore_patterns("__pycache__", "build", "dist", "*.egg-info",
                                                               ".pytest_cache"))
    return dst


def pip(bin_dir, *args, cwd):
    r = subprocess.run([os.path.join(bin_dir, "python"), "-m", "pip", "--no-input", *args], cwd=cwd,
                       env=clean_env(), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"pip {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r


def run(bin_dir, *cmd, cwd, **env):
    """A command of the venv, from a folder outside the checkout, seeing only the venv's packages."""
    exe = os.path.join(bin_dir, cmd[0])
    return subprocess.run([exe, *cmd[1:]], cwd=cwd, env=clean_env(**env), capture_output=True, text=True,
                          timeout=120)


def check_installed(bin_dir, daemon, cwd):
    """`import erudiff` comes from the venv; `erudiff-py status`, `python -m erudiff status` and a
    Client() call (socket from ERUDIFF_SOCKET) reach the daemon under test."""
    r = run(bin_dir, "python", "-c", "import erudiff, json; print(json.dumps([erudiff.__file__, erudiff.__version__]))",
            cwd=cwd)
    assert r.returncode == 0, r.stderr
    path, version = json.loads(r.stdout)
    venv_root = os.path.dirname(bin_dir)
    assert path.startswith(venv_root + os.sep), f"erudiff imported from {path}, not from the venv {venv_root}"
    assert "site-packages" in path and version

    pid = daemon.proc.pid
    r = run(bin_dir, "erudiff-py", "--socket", daemon.socket_path, "status", cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["pid"] == pid
    r = run(bin_dir, "python", "-m", "erudiff", "--socket", daemon.socket_path, "status", cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["pid"] == pid
    r = run(bin_dir, "python", "-c", "from erudiff import Client\nwith Client() as c: print(c.status()['pid'])",
            cwd=cwd, ERUDIFF_SOCKET=daemon.socket_path)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == pid
    r = run(bin_dir, "erudiff-py", "--help", cwd=cwd)
    assert r.returncode == 0 and r.stdout.startswith("usage: erudiff-py"), r.stdout + r.stderr


def test_pip_install_of_the_folder_in_a_fresh_venv(source, daemon, tmp_path):
    bin_dir = venv(str(tmp_path / "venv"))
    pip(bin_dir, "install", source, cwd=str(tmp_path))
    check_installed(bin_dir, daemon, str(tmp_path))
    shown = dict(line.split(":", 1) for line in pip(bin_dir, "show", "erudiff", cwd=str(tmp_path)).stdout.splitlines()
                 if ":" in line)
    assert shown["Requires"].strip() == "", f"the package has dependencies: {shown['Requires']}"


def test_a_wheel_built_from_the_folder(source, daemon, tmp_path):
    bin_dir = venv(str(tmp_path / "venv"))
    dist = str(tmp_path / "dist")
    pip(bin_dir, "wheel", "--no-deps", "-w", dist, source, cwd=str(tmp_path))
    wheels = os.listdir(dist)
    assert len(wheels) == 1 and wheels[0].endswith("-py3-none-any.whl"), wheels
    wheel = os.path.join(dist, wheels[0])
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA")).rsplit("/", 1)[0]
        entry_points = z.read(f"{info}/entry_points.txt").decode()
        metadata = z.read(f"{info}/METADATA").decode()
    modules = sorted(n for n in names if not n.startswith(info + "/"))
    expected = sorted(f"erudiff/{f}" for f in os.listdir(os.path.join(source, "erudiff")) if f.endswith(".py"))
    assert modules == expected, f"the wheel holds {modules}, not the package's modules alone"
    assert "erudiff-py = erudiff.__main__:console" in entry_points
    assert "Requires-Dist" not in metadata, "the client must need nothing but the standard library"
    # Installing the wheel needs no index at all.
    pip(bin_dir, "install", "--no-index", wheel, cwd=str(tmp_path))
    check_installed(bin_dir, daemon, str(tmp_path))
