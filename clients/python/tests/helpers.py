"""Test helpers: start the real erudiffd on a private socket, talk to it over a real socket in either
framing, and check replies against the OpenRPC document."""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
OPENRPC = os.path.join(REPO, "protocol", "openrpc.json")
# test/sleep and test/echo (served with --enable-test-methods only): not in the public contract.
TEST_METHODS = os.path.join(HERE, "test-methods.openrpc.json")
SHELL_CLIENT = os.path.join(REPO, "clients", "erudiff")


def daemon_binary():
    """The erudiffd under test: $ERUDIFFD, else a release build in the repository."""
    path = os.environ.get("ERUDIFFD")
    if path:
        return path
    for scratch in (".build", ".build-daemon"):
        p = os.path.join(REPO, scratch, "release", "erudiffd")
        if os.path.exists(p):
            return p
    raise RuntimeError("set ERUDIFFD to the erudiffd binary (scripts/test-python builds it)")


class Daemon:
    """One erudiffd process with its own socket, state directory and log file."""

    def __init__(self, workdir, *args, socket_path=None, test_methods=True, env=None, wait=True, model=None,
                 state_dir=None, binary=None, cwd=None):
        """``model``: a model folder served as ``mini``; None starts without a model
        (``--no-default-model``), so protocol tests do not depend on one; "default" lets the daemon
        look for mini itself."""
        self.workdir = workdir
        self.socket_path = socket_path or os.path.join(workdir, "run", "erudiffd.sock")
        self.state_dir = state_dir or os.path.join(workdir, "state")
        self.log_path = os.path.join(workdir, f"erudiffd-{time.monotonic_ns()}.log")
        cmd = [binary or daemon_binary(), "--state-dir", self.state_dir]
        if socket_path is not False:
            cmd += ["--socket", self.socket_path]
        if test_methods:
            cmd.append("--enable-test-methods")
        if model is None:
            cmd.append("--no-default-model")
        elif model != "default":
            cmd += ["--model", f"mini={model}"]
        cmd += list(args)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=self._log, stdin=subprocess.DEVNULL,
                                     env=env if env is not None else os.environ.copy(), cwd=cwd)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"erudiffd exited with {self.proc.returncode}:\n{self.log()}")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.socket_path)
                s.close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"erudiffd did not listen on {self.socket_path}:\n{self.log()}")

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        self.expected_exit = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def connect(self, framing="line", timeout=10):
        return Conn(self.socket_path, framing, timeout)


class Conn:
    """A raw client connection. ``framing`` is "line" or "lsp"; replies come back in the same framing."""

    def __init__(self, path, framing="line", timeout=10):
        self.framing = framing
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.eof = False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def encode(message, framing):
        body = message if isinstance(message, bytes) else json.dumps(message, separators=(",", ":")).encode()
        if framing == "lsp":
            return b"Content-Length: %d\r\n\r\n" % len(body) + body
        return body + b"\n"

    def send(self, message):
        self.sock.sendall(self.encode(message, self.framing))

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no complete message in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 16)
        except socket.timeout:
            raise TimeoutError("no complete message in time") from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise EOFError("connection closed by the daemon")
        self.buf += chunk

    def recv(self, timeout=None):
        """The next message (parsed JSON)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            if self.framing == "line":
                i = self.buf.find(b"\n")
                if i >= 0:
                    line, self.buf = self.buf[:i], self.buf[i + 1:]
                    if line.strip():
                        return json.loads(line)
                    continue
            else:
                i = self.buf.find(b"\r\n\r\n")
                if i >= 0:
                    header = self.buf[:i].decode("ascii")
                    assert header.startswith("Content-Length: "), header
                    n = int(header.split(":", 1)[1])
                    if len(self.buf) >= i + 4 + n:
                        body = self.buf[i + 4:i + 4 + n]
                        self.buf = self.buf[i + 4 + n:]
                        return json.loads(body)
            self._fill(deadline)

    def recv_reply(self, request_id, timeout=None, notifications=None):
        """Reads until the reply with this id; notifications met on the way go into ``notifications``."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            m = self.recv(max(0.001, deadline - time.monotonic()))
            if isinstance(m, dict) and "method" in m:
                if notifications is not None:
                    notifications.append(m)
                continue
            if isinstance(m, dict) and m.get("id") == request_id:
                return m
            raise AssertionError(f"unexpected message while waiting for {request_id}: {m}")

    def call(self, method, params=None, request_id=1, timeout=None, notifications=None):
        m = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            m["params"] = params
        self.send(m)
        return self.recv_reply(request_id, timeout, notifications)

    def closed_by_peer(self, timeout=5):
        """True when the daemon closes the connection within ``timeout`` (data before EOF is dropped)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
        except EOFError:
            return True
        except (TimeoutError, ConnectionResetError):
            return False
        except OSError:
            return True

    def nothing_within(self, seconds):
        """True when no byte arrives within ``seconds``."""
        r, _, _ = select.select([self.sock], [], [], seconds)
        return not r and not self.buf


def request(method, params=None, request_id=1):
    m = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        m["params"] = params
    return m


def notification(method, params=None):
    m = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        m["params"] = params
    return m


class Contract:
    """The OpenRPC document (``doc``), with jsonschema validators for each method's params and result;
    ``methods`` also holds the test methods, whose document uses the public one's components."""

    def __init__(self, path=OPENRPC, test_methods=TEST_METHODS):
        import jsonschema
        with open(path) as f:
            self.doc = json.load(f)
        with open(test_methods) as f:
            self.test_doc = json.load(f)
        self.public_methods = {m["name"]: m for m in self.doc["methods"]}
        self.methods = {**self.public_methods, **{m["name"]: m for m in self.test_doc["methods"]}}
        self._jsonschema = jsonschema
        self._root = {"components": self.doc["components"]}

    def _validator(self, schema):
        s = dict(schema)
        s["components"] = self.doc["components"]
        cls = self._jsonschema.validators.validator_for({"$schema": "http://json-schema.org/draft-07/schema#"})
        return cls(s)

    def check_result(self, method, result):
        self._validator(self.methods[method]["result"]["schema"]).validate(result)

    def check_params(self, method, params):
        m = self.methods[method]
        props, required = {}, []
        for p in m["params"]:
            props[p["name"]] = p["schema"]
            if p.get("required"):
                required.append(p["name"])
        self._validator({"type": "object", "properties": props, "required": required,
                         "additionalProperties": False}).validate(params)

    def check_error(self, error):
        self._validator({"$ref": "#/components/schemas/ErrorObject"}).validate(error)
        codes = {e["code"] for e in self.doc["components"]["errors"].values()}
        assert error["code"] in codes, f"error code {error['code']} is not documented"

    def check_progress(self, params):
        self._validator({"$ref": "#/components/schemas/ProgressParams"}).validate(params)

    def check_reply(self, method, reply):
        """A full reply: envelope, then result or error against the document."""
        assert reply.get("jsonrpc") == "2.0", reply
        assert ("result" in reply) != ("error" in reply), reply
        if "error" in reply:
            self.check_error(reply["error"])
        else:
            self.check_result(method, reply["result"])


def tempdir():
    return tempfile.mkdtemp(prefix="erudiffd-test-")


def png_pixels(data):
    """(width, height, channels, bytes) of an 8-bit, non-interlaced PNG (what the daemon writes), decoded
    with the standard library: chunks, zlib, and the five scanline filters."""
    import struct
    import zlib
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, color, _, _, interlace = header
    assert depth == 8 and interlace == 0 and color in (0, 2, 6), header
    ch = {0: 1, 2: 3, 6: 4}[color]
    raw, stride, out, prev = zlib.decompress(idat), w * ch, bytearray(), bytearray(w * ch)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - ch] if i >= ch else 0
            b, c = prev[i], (prev[i - ch] if i >= ch else 0)
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    return w, h, ch, bytes(out)


def png_max_difference(a, b):
    """The largest difference of one channel value between two PNGs of the same size."""
    pa, pb = png_pixels(a), png_pixels(b)
    assert pa[:3] == pb[:3], (pa[:3], pb[:3])
    return max(abs(x - y) for x, y in zip(pa[3], pb[3]))


def status_storm(d, clients, status_calls, sample=False, check_status=None, timeout=300):
    """`clients` connections driven from one thread (no GIL contention between client threads), each
    with one status call in flight at a time, `status_calls` of them; with `sample`, each connection first
    sends a 20-step one-image sample. `check_status(reply)` is applied to every status reply. Returns the
    status latencies (sorted), each sample's time to answer, and the wall time."""
    import selectors
    conns = [d.connect() for _ in range(clients)]
    sel = selectors.DefaultSelector()
    sent_at, left, bufs, latencies, sample_time = {}, {}, {}, [], {}
    t0 = time.perf_counter()
    try:
        for i, c in enumerate(conns):
            c.sock.setblocking(False)
            sel.register(c.sock, selectors.EVENT_READ, i)
            left[i] = status_calls
            bufs[i] = b""
            if sample:
                c.sock.sendall(json.dumps(request("sample", {"prompt": "a school zone road sign", "seed": i}, f"s{i}")).encode() + b"\n")
            sent_at[i] = time.perf_counter()
            c.sock.sendall(json.dumps(request("status", None, i)).encode() + b"\n")
        wanted_samples = clients if sample else 0
        deadline = time.monotonic() + timeout
        while (left or len(sample_time) < wanted_samples) and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                i = key.data
                bufs[i] += conns[i].sock.recv(1 << 16)
                while b"\n" in bufs[i]:
                    line, bufs[i] = bufs[i].split(b"\n", 1)
                    r = json.loads(line)
                    if r["id"] == f"s{i}":
                        assert len(r["result"]["images"]) == 1, r
                        sample_time[i] = time.perf_counter() - t0
                        continue
                    latencies.append(time.perf_counter() - sent_at[i])
                    if check_status:
                        check_status(r)
                    left[i] -= 1
                    if left[i] == 0:
                        del left[i]
                    else:
                        sent_at[i] = time.perf_counter()
                        conns[i].sock.sendall(json.dumps(request("status", None, i)).encode() + b"\n")
    finally:
        for c in conns:
            c.close()
    assert not left and len(sample_time) == wanted_samples, "some calls got no answer"
    return sorted(latencies), list(sample_time.values()), time.perf_counter() - t0


def pypi_unreachable(project="setuptools", timeout=20):
    """None when the package index pip uses answers for ``project``; else why not, for a skip message.
    Tests that install from PyPI (a fresh venv, the notebook's venv) skip only for this reason: any
    other failure of pip is a failure of the test."""
    import ssl
    import urllib.request
    index = os.environ.get("PIP_INDEX_URL")
    if not index:
        r = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.index-url"],
                           capture_output=True, text=True)
        index = r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else "https://pypi.org/simple/"
    url = index.rstrip("/") + f"/{project}/"
    cafile = os.environ.get("PIP_CERT")
    context = ssl.create_default_context(cafile=cafile if cafile and os.path.exists(cafile) else None)
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as r:
            r.read(1)
        return None
    except Exception as e:  # any failure to reach the index: DNS, refused, TLS, HTTP error
        return f"PyPI unreachable: {url} answered {e!r}, so pip cannot fetch {project}"


def venv(path):
    """A fresh virtual environment (with pip) at ``path``; returns its bin folder."""
    subprocess.run([sys.executable, "-m", "venv", path], check=True, capture_output=True, timeout=300)
    return os.path.join(path, "bin")


def clean_env(**extra):
    """The environment for a process that must see only its own venv's packages (no PYTHONPATH to the
    checkout's client, no PYTHONHOME), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def daemon_pids(needle):
    """Pids of the erudiffd processes whose command line holds ``needle`` (a socket path, a folder)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if args and os.path.basename(args[0]) == b"erudiffd" and any(needle.encode() in a for a in args):
            if process_state(int(entry)) not in (None, "Z"):
                pids.append(int(entry))
    return pids


def wait_gone(pid, timeout):
    """True once process ``pid`` has ended (within ``timeout`` seconds)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if process_state(pid) in (None, "Z"):
            return True
        time.sleep(0.05)
    return False


def process_state(pid):
    """The state letter of process ``pid`` from /proc (``"Z"`` for a zombie), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None
