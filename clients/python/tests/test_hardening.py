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
        r, seconds = timed(d, "sample", {"prompt": "a school zone road sign", "steps": 2, "seed": 3}, timeout=30)
        assert "result" in r, "the worker is free for the next job"
    finally:
        unblock_fifo(fifo)
    assert state_files(d) == before
    cell = rpc(d, "images/grid", {"rows": [[fifo]], "path": os.path.join(workdir, "g.png")})
    assert "error" in cell and "not a regular file" in cell["error"]["message"], cell


# --------------------------------------------------------------------------------------------------
# batches


def test_a_batch_over_the_limit_is_one_clear_error(daemon, contract):
    with daemon.connect(timeout=30) as c, daemon.connect() as other:
        c.send([request("status", None, i) for i in range(1001)])
        r = c.recv(timeout=30)
        assert isinstance(r, dict), "a 1001-request batch is refused as a whole"
        contract.check_error(r["error"])
        assert r["error"]["code"] == -32600 and "--max-batch" in r["error"]["message"], r
        assert r["id"] is None and r["error"]["data"]["maxBatch"] == 1000
        # 100,000 requests (4.7 MB) are refused without being parsed into objects, and quickly.
        big = json.dumps([request("status", None, i) for i in range(100_000)]).encode() + b"\n"
        t0 = time.monotonic()
        c.send_raw(big)
        lat = []
        while True:
            t1 = time.monotonic()
            assert other.call("status", request_id=len(lat))["id"] == len(lat)
            lat.append(time.monotonic() - t1)
            if select_ready(c) or time.monotonic() - t0 > 30:
                break
        r = c.recv(timeout=30)
        assert r["error"]["code"] == -32600 and "100000" in r["error"]["message"], r
        assert time.monotonic() - t0 < 2.0
        assert max(lat) < 0.25, f"status waited {max(lat) * 1000:.0f} ms behind the batch"
        assert c.call("status", request_id="after")["result"]["queue"] == 0


def select_ready(c, timeout=0.005):
    import select
    if c.buf:
        return True
    r, _, _ = select.select([c.sock], [], [], timeout)
    return bool(r)


def test_big_batches_are_worked_in_slices_between_other_clients(daemon):
    """20 batches of 1000 status calls from one client: the daemon works them in slices, so another
    client's status never waits behind a whole batch."""
    with daemon.connect(timeout=60) as c, daemon.connect() as other:
        batch = json.dumps([request("status", None, i) for i in range(1000)]).encode() + b"\n"
        t0 = time.monotonic()
        c.send_raw(batch * 20)
        got, lat = 0, []
        while got < 20:
            t1 = time.monotonic()
            other.call("status", request_id=len(lat))
            lat.append(time.monotonic() - t1)
            while select_ready(c, 0.002) and got < 20:
                r = c.recv(timeout=30)
                assert isinstance(r, list) and len(r) == 1000, str(r)[:200]
                got += 1
        elapsed = time.monotonic() - t0
        lat.sort()
        print(f"20 × 1000 status in {elapsed:.2f} s; another client's status: median "
              f"{lat[len(lat) // 2] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms over {len(lat)} calls")
        # The daemon's loop takes about 1 ms per slice (scripts/probe-hardening measures it); the bound
        # leaves room for a loaded CI machine, and a whole batch on the loop took 0.75 s.
        assert lat[-1] < 0.2, f"status waited {lat[-1] * 1000:.0f} ms behind a batch"
        assert daemon.connect().call("status")["result"]["loop"]["longestTurnMs"] < 50


def test_the_loop_meter_counts_work_done_in_io_callbacks(daemon):
    """`status.loop` is the loop's busy time per turn including its I/O callbacks (reads, dispatch of
    immediate methods), where a client's work runs: a request that holds the loop 60 ms shows."""
    with daemon.connect() as c:
        assert c.call("test/echo", {"value": 1, "holdMs": 60})["result"] == 1
        loop = c.call("status")["result"]["loop"]
    assert loop["longestTurnMs"] >= 55 and loop["turnsOver20ms"] >= 1, loop


def test_bursts_of_connections_and_big_half_frames_keep_every_loop_turn_short(start):
    """30 clients streaming 15 MiB frames as fast as they can, then 300 connections at once: the
    daemon reads a share of each client per turn, keeps a big unfinished frame as pieces (no buffer
    doubling, all clients at once) and accepts a share of new clients per turn, so no turn of its
    loop is long (before: 57 ms for the connections, 22-68 ms for the frames; now about 10 ms)."""
    d = start()
    body = b"Content-Length: %d\r\n\r\n" % (15 << 20) + b'{"a":"' + b"x" * ((15 << 20) - 10)
    socks, conns = [], []
    try:
        socks = send_half_frames(d, 30, body, 1 << 20, seconds=3, pause=0.002)
        for _ in range(300):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.socket_path)
            conns.append(s)
        time.sleep(0.5)
        with d.connect() as c:
            loop = c.call("status")["result"]["loop"]
        print(f"the daemon's loop under the bursts: {loop}")
        # Measured about 10 ms on 2 cores; the bound leaves room for a loaded machine's preemption.
        assert loop["longestTurnMs"] < 35, loop
    finally:
        for x in socks:
            x[0].close()
        for s in conns:
            s.close()


def test_reply_size_is_capped_with_a_clear_error(start, contract):
    d = start("--max-reply-bytes", "4096")
    with d.connect() as c:
        r = c.call("test/echo", {"value": "x" * 5000})
        contract.check_error(r["error"])
        assert r["error"]["code"] == -32005 and "--max-reply-bytes" in r["error"]["message"], r
        assert r["error"]["data"]["maxReplyBytes"] == 4096
        c.send([request("test/echo", {"value": "y" * 1000}, i) for i in range(10)])
        replies = c.recv()
        assert [m["id"] for m in replies] == list(range(10))
        ok = [m for m in replies if "result" in m]
        cut = [m for m in replies if "error" in m]
        assert 1 <= len(ok) <= 4 and cut and all(m["error"]["code"] == -32005 for m in cut)
        assert len(json.dumps(replies)) < 4096 + 1500
        assert c.call("status", request_id=2)["result"]["queue"] == 0


def test_memory_returns_after_a_spike(daemon):
    """Big messages (six 12 MiB echoes) raise the resident size; it comes back once they are done."""
    base = rss(daemon)
    value = "z" * (12 << 20)
    conns = [daemon.connect(timeout=60) for _ in range(6)]
    try:
        for i, c in enumerate(conns):
            c.send(request("test/echo", {"value": value}, i))
        for i, c in enumerate(conns):
            assert len(c.recv(timeout=60)["result"]) == len(value)
    finally:
        for c in conns:
            c.close()
    peak = rss(daemon)
    deadline = time.monotonic() + 5
    while rss(daemon) > base + (50 << 20) and time.monotonic() < deadline:
        time.sleep(0.1)
    after = rss(daemon)
    print(f"resident: before {base >> 20} MiB, after the echoes {peak >> 20} MiB, then {after >> 20} MiB")
    assert after <= base + (50 << 20), f"{after >> 20} MiB resident, {base >> 20} MiB before"


# --------------------------------------------------------------------------------------------------
# connections: idle ones, half-sent frames, the buffer budget


def _wait_alone(c, timeout=3):
    deadline = time.monotonic() + timeout
    while c.call("status", request_id="alone")["result"]["connections"] > 1:
        assert time.monotonic() < deadline, "other connections linger"
        time.sleep(0.01)


def test_idle_connections_make_room_for_new_clients(start, contract):
    d = start("--max-connections", "8")
    first = d.connect()
    _wait_alone(first)
    idle = [first] + [d.connect() for _ in range(7)]
    for c in idle[1:]:
        assert c.call("status")["id"] == 1
    t0 = time.monotonic()
    with d.connect() as new:
        assert new.call("status", request_id="new")["result"]["connections"] <= 8
    assert time.monotonic() - t0 < 1
    notice = first.recv(timeout=2)           # the longest idle got a reason, then EOF
    contract.check_error(notice["error"])
    assert notice["error"]["code"] == -32001 and "--max-connections 8" in notice["error"]["message"], notice
    assert first.closed_by_peer(2)
    for c in idle[1:]:
        c.close()


def test_when_every_connection_is_busy_a_new_client_is_told_why(start):
    d = start("--max-connections", "2")
    a = d.connect()
    _wait_alone(a)
    b = d.connect()
    a.send(request("test/sleep", {"units": 1000, "unitMs": 10}, "a"))
    b.send(request("test/sleep", {"units": 1000, "unitMs": 10}, "b"))
    time.sleep(0.2)
    c = d.connect()
    m = c.recv(timeout=2)
    assert m["error"]["code"] == -32001 and "--max-connections 2" in m["error"]["message"], m
    assert c.closed_by_peer(2)
    for x, rid in ((a, "a"), (b, "b")):
        x.send(notification("$/cancelRequest", {"id": rid}))
        assert x.recv_reply(rid)["error"]["code"] == -32800
        x.close()


@pytest.mark.parametrize("framing,partial", [("line", b'{"jsonrpc":"2.0","id":1,"meth'),
                                             ("lsp", b"Content-Length: 1000\r\n\r\n{\"jsonrpc\""),
                                             ("lsp", b"Content-Len")])
def test_a_half_sent_frame_times_out_with_an_error(start, contract, framing, partial):
    d = start("--frame-timeout", "1")
    with d.connect(framing) as c:
        c.send_raw(partial)
        t0 = time.monotonic()
        m = c.recv(timeout=4)
        waited = time.monotonic() - t0
        contract.check_error(m["error"])
        assert m["error"]["code"] == -32006 and "--frame-timeout 1" in m["error"]["message"], m
        assert m["id"] is None and 0.8 < waited < 3, waited
        assert c.closed_by_peer(2)
    with d.connect() as c:
        assert c.call("status")["result"]["queue"] == 0


def send_half_frames(d, clients, data, piece, seconds, pause):
    """Connects `clients` sockets and sends each `data` in pieces, without blocking, until all is sent
    or `seconds` pass; returns [socket, what it has left to send] per client (the caller closes them)."""
    socks = []
    for _ in range(clients):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.socket_path)
        s.setblocking(False)
        socks.append([s, memoryview(data)])
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(len(x[1]) for x in socks):
        for x in socks:
            if x[1]:
                try:
                    x[1] = x[1][x[0].send(x[1][:piece]):]
                except (BlockingIOError, OSError):
                    pass
        time.sleep(pause)
    return socks


def test_half_sent_big_frames_are_held_within_the_buffer_budget(start):
    """Ten clients each send 12 MiB of a 15 MiB frame and stall: the daemon holds at most
    --max-pending-bytes of them (it stops reading the rest), stays small and serves others."""
    d = start("--max-pending-bytes", str(16 << 20))
    base = rss(d)
    chunk = b"x" * (1 << 20)
    socks = []
    try:
        socks = send_half_frames(d, 10, b"Content-Length: %d\r\n\r\n" % (15 << 20) + b'{"a":"' + chunk * 12, 1 << 18,
                                 seconds=6, pause=0.001)
        stuck = sum(1 for x in socks if x[1])
        t0 = time.monotonic()
        with d.connect() as c:
            assert c.call("status")["result"]["connections"] >= 10
        assert time.monotonic() - t0 < 0.5
        grown = rss(d) - base
        print(f"{stuck} of 10 senders held back; resident grew by {grown >> 20} MiB")
        assert stuck >= 5, "the daemon kept reading every stalled frame"
        assert grown < (60 << 20), f"resident grew by {grown >> 20} MiB"
    finally:
        for x in socks:
            x[0].close()


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


def test_method_not_found_does_not_echo_a_huge_name(daemon, contract):
    with daemon.connect(timeout=30) as c:
        r = c.call("x" * (4 << 20), timeout=30)
        contract.check_error(r["error"])
        assert r["error"]["code"] == -32601
        assert len(r["error"]["message"]) < 200 and "4194304" in r["error"]["message"], r["error"]["message"][:300]


@pytest.mark.parametrize("params,name", [
    ({"processId": "me"}, "processId"),
    ({"processId": 1.5}, "processId"),
    ({"clientInfo": "editor"}, "clientInfo"),
    ({"clientInfo": {"name": 5}}, "clientInfo.name"),
    ({"clientInfo": {"name": "e", "version": []}}, "clientInfo.version"),
    ({"capabilities": 5}, "capabilities"),
    ({"rootUri": 7}, "rootUri"),
    ({"rootPath": {}}, "rootPath"),
    ({"trace": "loud"}, "trace"),
    ({"locale": 3}, "locale"),
    ({"workspaceFolders": "x"}, "workspaceFolders"),
])
def test_initialize_checks_the_types_of_its_params(daemon, contract, params, name):
    r = rpc(daemon, "initialize", params)
    assert "error" in r, f"initialize accepted {params}"
    contract.check_error(r["error"])
    assert r["error"]["code"] == -32602 and f'"{name}"' in r["error"]["message"], r


def test_initialize_still_accepts_what_lsp_clients_send(daemon):
    r = rpc(daemon, "initialize", {"processId": None, "clientInfo": {"name": "ed", "version": "1"}, "locale": "en",
                                   "rootPath": None, "rootUri": "file:///tmp", "capabilities": {"x": 1},
                                   "trace": "off", "workspaceFolders": None, "initializationOptions": {"a": 1},
                                   "somethingNew": [1]})
    assert r["result"]["serverInfo"]["name"] == "erudiffd"


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


def test_python_client_without_a_daemon_says_what_to_do(workdir):
    path = os.path.join(workdir, "run", "erudiffd.sock")
    with pytest.raises(erudiff.DaemonUnavailable) as e:
        erudiff.Client(path, autostart=False)
    text = str(e.value)
    assert path in text and "is erudiffd running" in text and "ERUDIFF_SOCKET" in text, text
    os.makedirs(os.path.dirname(path))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)                     # a socket file nobody listens on: a daemon that died
    s.close()
    with pytest.raises(erudiff.DaemonUnavailable) as e:
        erudiff.Client(path, autostart=False)
    assert "is erudiffd running" in str(e.value), str(e.value)


def test_python_client_reconnects_after_its_idle_connection_was_closed(start):
    d = start("--max-connections", "2")
    with erudiff.Client(d.socket_path) as c:
        assert c.status()["queue"] == 0
        others = []
        for _ in range(2):                          # the second makes the daemon close c's idle connection
            others.append(d.connect())
            assert others[-1].call("status")["id"] == 1
        time.sleep(0.2)
        assert c._lost and "--max-connections 2" in c._lost, c._lost
        others[0].close()
        time.sleep(0.1)
        assert c.status()["queue"] == 0, "an idle client that lost its connection connects again"
        others[1].close()


def test_the_limits_are_flags_in_the_help_and_the_protocol_page():
    import re
    import subprocess
    from helpers import REPO, daemon_binary
    help_text = subprocess.run([daemon_binary(), "--help"], capture_output=True, text=True, timeout=10).stdout
    with open(os.path.join(REPO, "protocol", "README.md")) as f:
        page = f.read()
    limits = ["--max-connections", "--max-message-bytes", "--max-batch", "--max-reply-bytes", "--max-pending-bytes",
              "--frame-timeout", "--max-queue", "--long-job-share"]
    for flag in limits:
        line = next((x for x in help_text.splitlines() if x.strip().startswith(flag + " ")), None)
        assert line and re.search(r"\(default \d+\)", help_text[help_text.index(line):].split("\n  --")[0]), flag
        assert f"| `{flag}` |" in page, f"{flag} is not in protocol/README.md's table of limits"
