"""The socket itself: default location, permissions, peer uid check, stale files, a live daemon's
path, connection limit, a request storm, signals."""

import os
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest

from helpers import Daemon, daemon_binary, request


def test_default_path_under_xdg_runtime_dir_with_0700_and_0600(workdir, start):
    runtime = os.path.join(workdir, "xdg")
    os.makedirs(runtime, mode=0o755)
    env = dict(os.environ, XDG_RUNTIME_DIR=runtime)
    d = start(socket_path=False, env=env, wait=False)
    d.socket_path = os.path.join(runtime, "erudiff", "erudiffd.sock")
    d.wait_ready()
    assert stat.S_IMODE(os.stat(os.path.dirname(d.socket_path)).st_mode) == 0o700
    st = os.lstat(d.socket_path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    with d.connect() as c:
        assert c.call("status")["result"]["queue"] == 0


def test_default_path_without_xdg_is_tmp_erudiff_uid(workdir, start):
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    path = f"/tmp/erudiff-{os.getuid()}/erudiffd.sock"
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if probe.connect_ex(path) == 0:
        probe.close()
        pytest.fail(f"a daemon already runs on {path}; this test needs that default path free")
    probe.close()
    d = start(socket_path=False, env=env, wait=False)
    d.socket_path = path
    d.wait_ready()
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    assert d.stop() == 0
    assert not os.path.exists(path), "socket file removed at exit"


def test_socket_dir_created_0700(workdir, start):
    path = os.path.join(workdir, "a", "b", "c", "d.sock")
    d = start(socket_path=path)
    for sub in ("a", "a/b", "a/b/c"):
        assert stat.S_IMODE(os.stat(os.path.join(workdir, sub)).st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600


def test_stale_socket_file_is_replaced(workdir, start):
    path = os.path.join(workdir, "run", "erudiffd.sock")
    os.makedirs(os.path.dirname(path), mode=0o700)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()                       # the file stays: nobody listens
    assert os.path.exists(path)
    d = start(socket_path=path)
    with d.connect() as c:
        assert c.call("status")["id"] == 1
    assert "replaced a stale socket" in d.log()


def test_live_daemon_is_not_stolen(workdir, start):
    first = start()
    second = subprocess.run([daemon_binary(), "--socket", first.socket_path, "--state-dir", first.state_dir],
                            capture_output=True, text=True, timeout=20)
    assert second.returncode == 2
    assert "already listening" in second.stderr
    with first.connect() as c:
        assert c.call("status")["id"] == 1


def test_something_else_at_the_path_is_not_removed(workdir):
    path = os.path.join(workdir, "not-a-socket")
    with open(path, "w") as f:
        f.write("precious")
    r = subprocess.run([daemon_binary(), "--socket", path, "--state-dir", workdir], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 2 and "not a socket" in r.stderr
    with open(path) as f:
        assert f.read() == "precious"


def test_bad_command_lines(workdir):
    for args, needle in [(["--max-queue", "0"], "positive integer"), (["--log-level", "loud"], "--log-level"),
                         (["--frobnicate"], "unknown option"), (["--model", "noequals"], "NAME=PATH"),
                         (["--socket", "/tmp/" + "x" * 120], "at most 107")]:
        r = subprocess.run([daemon_binary(), *args], capture_output=True, text=True, timeout=20)
        assert r.returncode == 2, args
        assert needle in r.stderr, (args, r.stderr)
    r = subprocess.run([daemon_binary(), "--help"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0 and "--socket PATH" in r.stdout


def test_model_that_cannot_load_stops_start_up(workdir):
    r = subprocess.run([daemon_binary(), "--socket", os.path.join(workdir, "m.sock"), "--state-dir", workdir,
                        "--model", f"mini={workdir}/no-such-model"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "cannot load model mini" in r.stderr
    assert not os.path.exists(os.path.join(workdir, "m.sock"))


def _run_as_nobody(code):
    """Runs Python code as uid 65534 (the system Python: the test's own may live under /root)."""
    py = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", py, "-c", code],
                          capture_output=True, text=True, timeout=30)


CONNECT_AND_ASK = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1] if len(sys.argv) > 1 else PATH)
except OSError as e:
    print("connect-failed", e.errno); sys.exit(0)
try:
    s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"status"}\n')
    s.settimeout(5)
    data = s.recv(65536)
except OSError as e:
    print("closed", e.errno); sys.exit(0)
print("got", len(data), data[:60])
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another uid")
def test_other_uid_is_refused(start):
    d = start()
    # Through the permissions first: the directory is 0700, so another uid cannot even reach the socket.
    r = _run_as_nobody(CONNECT_AND_ASK.replace("PATH", repr(d.socket_path)))
    assert "connect-failed 13" in r.stdout, r.stdout + r.stderr
    # Then with the permissions opened by hand: SO_PEERCRED still refuses the peer.
    os.chmod(d.workdir, 0o711)
    os.chmod(os.path.dirname(d.socket_path), 0o777)
    os.chmod(d.socket_path, 0o777)
    r = _run_as_nobody(CONNECT_AND_ASK.replace("PATH", repr(d.socket_path)))
    assert "got 0 b''" in r.stdout or "closed" in r.stdout, r.stdout + r.stderr
    assert "refused a connection from uid 65534" in d.log()
    with d.connect() as c:                          # our own uid is still served
        assert c.call("status")["id"] == 1


def _wait_alone(c, timeout=5):
    deadline = time.monotonic() + timeout
    while c.call("status")["result"]["connections"] != 1:
        assert time.monotonic() < deadline, "other connections linger"
        time.sleep(0.01)


def test_connection_limit(start):
    """At --max-connections a fifth client takes the place of the connection idle the longest, which is
    told why; when every connection has a request in progress, the fifth is told why and closed."""
    d = start("--max-connections", "4")
    conns = [d.connect()]
    _wait_alone(conns[0])       # the start-up probe's connection is gone
    conns += [d.connect() for _ in range(3)]
    for c in conns:
        assert c.call("status")["id"] == 1
    with d.connect() as extra:
        assert extra.call("status")["result"]["connections"] == 4
    m = conns[0].recv(timeout=2)
    assert m["id"] is None and m["error"]["code"] == -32001 and "--max-connections 4" in m["error"]["message"]
    assert conns[0].closed_by_peer()
    assert "--max-connections 4" in d.log()
    busy = conns[1:]
    busy.append(d.connect())
    for i, c in enumerate(busy):
        c.send(request("test/sleep", {"units": 10000, "unitMs": 5}, i))
    time.sleep(0.2)
    extra = d.connect()
    m = extra.recv(timeout=2)
    assert m["error"]["code"] == -32001 and "each with a request in progress" in m["error"]["message"], m
    assert extra.closed_by_peer(), "a fifth client is closed when every connection is busy"
    for c in busy:
        c.close()
    time.sleep(0.1)
    with d.connect() as c:
        assert c.call("status")["id"] == 1


def test_request_storm(start):
    """64 clients at once, each sending 100 requests in bursts: all answered, nothing lost, and the
    daemon still serves afterwards. 16 more than --max-connections take the places of 16 idle ones
    (first those that never sent a message, oldest first), which are told why and closed."""
    d = start("--max-connections", "64")
    failures = []
    answered = []
    lock = threading.Lock()
    barrier = threading.Barrier(64)

    def client(k):
        try:
            with d.connect(framing="lsp" if k % 2 else "line", timeout=60) as c:
                barrier.wait()
                for burst in range(10):
                    for i in range(10):
                        n = burst * 10 + i
                        c.send(request("test/echo" if n % 3 else "status", {"value": [k, n]} if n % 3 else None, n))
                    got = [c.recv() for _ in range(10)]
                    assert sorted(m["id"] for m in got) == list(range(burst * 10, burst * 10 + 10))
                with lock:
                    answered.append(100)
        except Exception as e:
            failures.append(repr(e))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]
    assert sum(answered) == 6400
    held = [d.connect()]
    _wait_alone(held[0])
    held += [d.connect() for _ in range(63)]
    assert held[-1].call("status")["result"]["connections"] == 64
    extras = []
    for _ in range(16):
        extras.append(d.connect())
        assert extras[-1].call("status")["result"]["connections"] == 64
    evicted = [c for c in held if c.closed_by_peer(2 if c in held[1:17] else 0.05)]
    for c in held + extras:
        c.close()
    # held[0] and held[-1] asked for status; the others never sent a message: the oldest of those go.
    assert len(evicted) == 16 and evicted == held[1:17], "the 16 oldest silent connections make room"
    time.sleep(0.2)
    with d.connect() as c:
        assert c.call("status")["result"]["connections"] == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_shut_down_cleanly(start, sig):
    d = start()
    with d.connect() as c:
        assert c.call("status")["id"] == 1
    d.proc.send_signal(sig)
    assert d.proc.wait(10) == 0
    assert not os.path.exists(d.socket_path)
    d.expected_exit = True


def test_sigterm_the_moment_the_socket_accepts_shuts_down_cleanly(start):
    """A supervisor may signal as soon as the daemon is connectable: the handlers are in place before
    the socket listens (CI once caught a daemon killed by a SIGTERM sent in that gap; a 300 ms pause
    put between listening and the handlers reproduced it every time)."""
    for _ in range(10):
        d = start(wait=False)
        d.wait_ready()
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(10) == 0, d.log()
        assert not os.path.exists(d.socket_path)
        d.expected_exit = True


def test_socket_removed_only_if_ours(start, workdir):
    """A daemon whose socket file was replaced by someone else's leaves that file alone at exit."""
    d = start()
    os.unlink(d.socket_path)
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(d.socket_path)
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(10) == 0
    assert os.path.exists(d.socket_path)
    other.close()
    d.expected_exit = True
