"""Issue 35: one bad request must never cost the other clients their model, their work or their files.
Each test here probes the real daemon the way a careless or hostile local user would: adapters with
NaN values, writes onto foreign files, links and devices, reads of FIFOs, huge batches, idle and
half-sent connections, a flood of short jobs against a long one, and the small leaks around them.
The measurements at acceptance size (100,000-request batches, 500 idle connections, 60 half-sent
15 MiB frames, 16 sampling clients against DK-DM) are in scripts/probe-hardening."""

import json
import os
import socket
import stat
import struct
import threading
import time

import pytest

import erudiff
from helpers import Conn, notification, request

# --------------------------------------------------------------------------------------------------
# helpers


@pytest.fixture
def model_daemon(engine):
    """The module's daemon serving the copy of mini (conftest's `engine`); each test leaves it alive
    and with an adapter of its own making."""
    return engine


def rpc(d, method, params=None, timeout=60):
    with d.connect(timeout=timeout) as c:
        return c.call(method, params, timeout=timeout)


def timed(d, method, params=None, timeout=10):
    """(reply, seconds) of one request on an open connection (the connect is not timed)."""
    with d.connect(timeout=timeout) as c:
        t0 = time.monotonic()
        r = c.call(method, params, timeout=timeout)
        return r, time.monotonic() - t0


def state_files(d):
    """{relative path: (size, mtime_ns, mode)} of everything under the daemon's state directory."""
    out = {}
    for root, _, files in os.walk(d.state_dir):
        for f in files:
            p = os.path.join(root, f)
            st = os.lstat(p)
            out[os.path.relpath(p, d.state_dir)] = (st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode))
    return out


def with_nan(src, dst, how="nan"):
    """Copies the safetensors file `src` to `dst` with every float32 value of its first tensor made NaN
    (or +inf): the header stays valid, only the values are poison."""
    data = bytearray(open(src, "rb").read())
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    name = sorted(k for k in header if k != "__metadata__")[0]
    entry = header[name]
    assert entry["dtype"] == "F32", entry
    start, end = entry["data_offsets"]
    value = struct.pack("<f", float("nan") if how == "nan" else float("inf"))
    base = 8 + n
    for i in range(base + start, base + end, 4):
        data[i:i + 4] = value
    with open(dst, "wb") as f:
        f.write(data)


def is_root():
    return os.geteuid() == 0


def make_device(path):
    """A character device like /dev/null at `path` (needs root: else None)."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        return path
    except (PermissionError, OSError):
        return None


def unblock_fifo(path):
    """Opens the FIFO's writing end and closes it, so a reader blocked in open() (the bug) goes on."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError:
        pass


def rss(d):
    with open(f"/proc/{d.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# --------------------------------------------------------------------------------------------------
# NaN adapters


def _good_adapter(d, workdir, name="good.safetensors"):
    assert "result" in rpc(d, "adapters/reset", {"lora": {"rank": 2, "alpha": 2}})
    path = os.path.join(workdir, name)
    r = rpc(d, "adapters/save", {"path": path})
    assert "result" in r, r
    return path


@pytest.mark.parametrize("poison", ["nan", "inf"])
def test_adapters_load_refuses_non_finite_values_and_writes_nothing(model_daemon, contract, workdir, poison):
    d = model_daemon
    good = _good_adapter(d, workdir)
    bad = os.path.join(workdir, f"{poison}.safetensors")
    with_nan(good, bad, poison)
    before = state_files(d)
    r, seconds = timed(d, "adapters/load", {"path": bad})
    assert "error" in r, f"a {poison} adapter was accepted: {r}"
    contract.check_error(r["error"])
    assert r["error"]["code"] == -32602 and "non-finite" in r["error"]["message"], r
    assert seconds < 0.1 + 0.4, f"{seconds:.3f} s"   # 100 ms is the goal; slack for a loaded CI machine
    assert state_files(d) == before, "nothing is written to the state directory"
    im = rpc(d, "sample", {"prompt": "the flag of Japan", "steps": 2, "seed": 1})
    assert len(im["result"]["images"]) == 1 and d.alive()


def test_a_non_finite_checkpoint_is_not_restored(start, mini_model, model_daemon, workdir):
    """An adapter checkpointed with NaN values (from before this check) must not crash every restart:
    it is refused at load, the daemon serves the model without it, and sampling works."""
    good = _good_adapter(model_daemon, workdir)
    state = os.path.join(workdir, "nanstate")
    os.makedirs(os.path.join(state, "adapters"))
    with_nan(good, os.path.join(state, "adapters", "mini.safetensors"))
    d = start("--threads", "2", model=mini_model, state_dir=state)
    st = rpc(d, "status")["result"]
    assert st["models"][0]["adapter"] is None, st["models"][0]["adapter"]
    assert "non-finite" in d.log()
    r = rpc(d, "sample", {"prompt": "the flag of Japan", "steps": 2, "seed": 1})
    assert len(r["result"]["images"]) == 1 and d.alive()


# --------------------------------------------------------------------------------------------------
# adapters/save and images/grid: what they may write over


def test_adapters_save_refuses_foreign_files_links_devices_and_dot_dot(model_daemon, contract, workdir):
    d = model_daemon
    _good_adapter(d, workdir)
    text = os.path.join(workdir, "notes.txt")
    with open(text, "w") as f:
        f.write("my notes\n")

    r = rpc(d, "adapters/save", {"path": text})
    assert "error" in r, "an existing text file was overwritten"
    contract.check_error(r["error"])
    assert r["error"]["code"] == -32602 and "overwrite" in r["error"]["message"], r
    assert open(text).read() == "my notes\n"

    link = os.path.join(workdir, "link.safetensors")
    os.symlink(text, link)
    for overwrite in (False, True):
        r = rpc(d, "adapters/save", {"path": link, "overwrite": overwrite})
        assert "error" in r and "symbolic link" in r["error"]["message"], r
    assert os.path.islink(link) and open(text).read() == "my notes\n"

    fifo = os.path.join(workdir, "fifo.safetensors")
    os.mkfifo(fifo)
    folder = os.path.join(workdir, "folder.safetensors")
    os.mkdir(folder)
    targets = [fifo, folder]
    dev = make_device(os.path.join(workdir, "null.safetensors"))
    if dev:
        targets.append(dev)
    for target in targets:
        for overwrite in (False, True):
            r, seconds = timed(d, "adapters/save", {"path": target, "overwrite": overwrite})
            assert "error" in r and "not a regular file" in r["error"]["message"], (target, r)
            assert seconds < 0.5, (target, seconds)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.path.isdir(folder)
    if dev:
        assert stat.S_ISCHR(os.lstat(dev).st_mode)

    dotted = os.path.join(workdir, "sub", "..", "dotted.safetensors")
    r = rpc(d, "adapters/save", {"path": dotted})
    assert "error" in r and "'..'" in r["error"]["message"], r
    assert not os.path.exists(os.path.join(workdir, "dotted.safetensors"))

    r = rpc(d, "adapters/save", {"path": text, "overwrite": True})
    assert "result" in r, r
    assert open(text, "rb").read(8) != b"my notes"
    again = rpc(d, "adapters/save", {"path": text})
    assert "result" in again, "an adapter erudiff wrote may be replaced without overwrite"
    assert stat.S_IMODE(os.stat(text).st_mode) == 0o600


def test_adapter_files_and_checkpoints_are_0600(model_daemon, workdir):
    d = model_daemon
    path = _good_adapter(d, workdir, "mode.safetensors")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    ck = os.path.join(d.state_dir, "adapters", "mini.safetensors")
    assert stat.S_IMODE(os.stat(ck).st_mode) == 0o600, oct(os.stat(ck).st_mode)


def test_images_grid_refuses_foreign_files_links_and_devices(daemon, contract, workdir):
    rows = [[None, None]]
    text = os.path.join(workdir, "page.png")
    with open(text, "w") as f:
        f.write("not a picture\n")
    r = rpc(daemon, "images/grid", {"rows": rows, "path": text})
    assert "error" in r and "overwrite" in r["error"]["message"], r
    contract.check_error(r["error"])
    assert open(text).read() == "not a picture\n"

    ours = os.path.join(workdir, "grid.png")
    assert "result" in rpc(daemon, "images/grid", {"rows": rows, "path": ours})
    assert "result" in rpc(daemon, "images/grid", {"rows": rows, "path": ours}), "its own grid may be replaced"
    assert "result" in rpc(daemon, "images/grid", {"rows": rows, "path": text, "overwrite": True})

    link = os.path.join(workdir, "link.png")
    os.symlink(ours, link)
    fifo = os.path.join(workdir, "fifo.png")
    os.mkfifo(fifo)
    targets = [(link, "symbolic link"), (fifo, "not a regular file"), (workdir, "not a regular file")]
    dev = make_device(os.path.join(workdir, "null.png"))
    if dev:
        targets.append((dev, "not a regular file"))
    for target, words in targets:
        r = rpc(daemon, "images/grid", {"rows": rows, "path": target, "overwrite": True})
        assert "error" in r and words in r["error"]["message"], (target, r)
    assert os.path.islink(link) and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    r = rpc(daemon, "images/grid", {"rows": rows, "path": os.path.join(workdir, "a", "..", "b.png")})
    assert "error" in r and "'..'" in r["error"]["message"], r


# --------------------------------------------------------------------------------------------------
# reading what is not a file


def test_adapters_load_of_a_fifo_directory_or_device_answers_at_once(model_daemon, contract, workdir):
    d = model_daemon
    fifo = os.path.join(workdir, "adapter.fifo")
    os.mkfifo(fifo)
    before = state_files(d)
    try:
        for path in [fifo, workdir, "/dev/zero", "/dev/null"]:
            r, seconds = timed(d, "adapters/load", {"path": path}, timeout=3)
            assert "error" in r, (path, r)
            contract.check_error(r["error"])
            assert r["error"]["code"] == -32602 and "not a regular file" in r["error"]["message"], (path, r)
            assert seconds < 0.1 + 0.2, (path, seconds)
        r, seconds = timed(d, "sample", {"prompt": "a stop sign", "steps": 2, "seed": 3}, timeout=30)
        assert "result" in r, "the worker is free for the next job"
    finally:
        unblock_fifo(fifo)
    assert state_files(d) == before
    cell = rpc(d, "images/grid", {"rows": [[fifo]], "path": os.path.join(workdir, "g.png")})
    assert "error" in cell and "not a regular file" in cell["error"]["message"], cell


# --------------------------------------------------------------------------------------------------
# scheduling: a long job keeps its share under a flood of short ones


def test_a_long_job_keeps_its_share_under_16_clients_of_short_jobs(daemon):
    """The documented policy (protocol/README.md): once a job has used 2 s of worker time it is long;
    long jobs together get at least --long-job-share (50%) of the worker's time while short jobs
    wait. 16 clients submit short jobs back to back; the long job's units are counted."""
    unit = 0.04
    with daemon.connect() as owner, daemon.connect() as watch:
        owner.send(request("test/sleep", {"units": 1_000_000, "unitMs": int(unit * 1000)}, "long"))
        time.sleep(2.3)                                   # past 2 s of worker time: a long job
        stop = threading.Event()
        shorts = [0]

        def flood(k):
            with daemon.connect(timeout=60) as c:
                n = 0
                while not stop.is_set():
                    r = c.call("test/sleep", {"units": 4, "unitMs": 5}, request_id=n, timeout=60)
                    assert r["result"]["units"] == 4
                    n += 1
                    shorts[0] += 1
        threads = [threading.Thread(target=flood, args=(k,), daemon=True) for k in range(16)]
        for t in threads:
            t.start()
        time.sleep(0.5)

        def long_units():
            return [j for j in watch.call("status", request_id="s")["result"]["jobs"] if j["units"] > 1000 or j["id"] == 1][0]["units"]
        u0, t0, s0 = long_units(), time.monotonic(), shorts[0]
        time.sleep(4)
        u1, t1, s1 = long_units(), time.monotonic(), shorts[0]
        stop.set()
        for t in threads:
            t.join(30)
        share = (u1 - u0) * unit / (t1 - t0)
        print(f"long job: {u1 - u0} units of {unit * 1000:.0f} ms in {t1 - t0:.1f} s = {share:.0%} of the worker; "
              f"{s1 - s0} short jobs done meanwhile")
        assert share >= 0.40, f"the long job got {share:.0%} of the worker (the policy promises 50%)"
        assert s1 - s0 >= 16, "the short jobs still run"
        owner.send(notification("$/cancelRequest", {"id": "long"}))
        assert owner.recv_reply("long", timeout=10)["error"]["code"] == -32800


# --------------------------------------------------------------------------------------------------
# the small ones


def test_a_second_daemon_refuses_before_loading_its_model(start, mini_model):
    first = start()
    import helpers
    second = helpers.Daemon(first.workdir, "--threads", "2", model=mini_model, socket_path=first.socket_path,
                            state_dir=os.path.join(first.workdir, "state2"), wait=False)
    try:
        code = second.proc.wait(20)
    finally:
        second.stop()
    log = second.log()
    assert code == 2, log
    assert "already listening" in log and "loaded model" not in log, log
