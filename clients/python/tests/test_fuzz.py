"""A fuzzer against the live daemon: at least 100,000 random and mutated frames, in both framings,
over many connections; the daemon must not crash and must still serve a well-behaved client. CI runs
this bounded run; a longer one (e.g. ERUDIFF_FUZZ_FRAMES=2000000 ERUDIFF_FUZZ_SEED=$RANDOM
scripts/test-python -k fuzz, about eight minutes) is documented in protocol/README.md."""

import json
import os
import random
import socket
import threading
import time

from helpers import Conn

FRAMES = int(os.environ.get("ERUDIFF_FUZZ_FRAMES", "100000"))
SEED = int(os.environ.get("ERUDIFF_FUZZ_SEED", "20260"))

# Valid messages to mutate. Never shutdown or exit: those would end the daemon by design.
CORPUS = [
    {"jsonrpc": "2.0", "id": 1, "method": "status"},
    {"jsonrpc": "2.0", "id": "a", "method": "initialize", "params": {"processId": None, "capabilities": {}}},
    {"jsonrpc": "2.0", "id": 2, "method": "test/echo", "params": {"value": {"k": [1, 2.5, "é", None, True]}}},
    {"jsonrpc": "2.0", "id": 3, "method": "test/sleep", "params": {"units": 2, "unitMs": 0, "workDoneToken": "f"}},
    {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 3}},
    {"jsonrpc": "2.0", "method": "initialized", "params": {}},
    [{"jsonrpc": "2.0", "id": 4, "method": "status"}, {"jsonrpc": "2.0", "method": "status"}],
    {"jsonrpc": "2.0", "id": 5, "method": "sample", "params": {"prompt": "a school zone road sign", "steps": 4}},
    {"jsonrpc": "2.0", "id": 6, "method": "test/sleep", "params": {"units": "x"}},
    # Issue 35's probes, kept as seeds: a batch over --max-batch, LSP params of the wrong types, a long
    # method name. (No method that writes files: a mutated path could land anywhere.)
    [{"jsonrpc": "2.0", "id": i, "method": "status"} for i in range(1001)],
    {"jsonrpc": "2.0", "id": 7, "method": "initialize",
     "params": {"processId": "x", "clientInfo": {"name": 5}, "trace": "loud", "workspaceFolders": [{}], "rootUri": 1}},
    {"jsonrpc": "2.0", "id": 8, "method": "m" * 5000},
    {"jsonrpc": "2.0", "id": 9, "method": "adapters/load", "params": {"path": "/dev/zero"}},
]
TOKENS = [b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b"\\u0000", b"\\ud800", b"null", b"true", b"-0",
          b"1e308", b"99999999999999999999999", b"\r\n", b"\n", b"\r\n\r\n", b"Content-Length: ", b"\x00", b"\xff",
          b"\xc3\xa9", b'"jsonrpc"', b'"2.0"', b'"method"', b'"id"', b'"params"', b"[" * 100]


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if op == 0 and data:                      # flip bits
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1 and data:                    # delete a run
            i = rng.randrange(len(data))
            del data[i:i + rng.randint(1, 8)]
        elif op == 2:                             # insert a token
            i = rng.randint(0, len(data))
            data[i:i] = rng.choice(TOKENS)
        elif op == 3:                             # random bytes
            i = rng.randint(0, len(data))
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 4 and data:                    # truncate
            del data[rng.randrange(len(data)):]
        elif op == 5 and data:                    # duplicate a slice
            i = rng.randrange(len(data))
            data[i:i] = data[i:i + rng.randint(1, 32)]
        else:                                     # replace a byte
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def frame(rng, framing):
    kind = rng.random()
    if kind < 0.15:
        body = json.dumps(rng.choice(CORPUS)).encode()
    elif kind < 0.85:
        body = mutate(rng, json.dumps(rng.choice(CORPUS)).encode())
    elif kind < 0.95:
        body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    else:
        depth = rng.randint(1, 3000)
        body = b"[" * depth + b"]" * rng.randint(0, depth)
    if framing == "line":
        return body.replace(b"\n", b" ") + b"\n"
    n = len(body)
    r = rng.random()
    if r < 0.05:
        n += rng.randint(-5, 5)           # a lying Content-Length
    elif r < 0.08:
        return mutate(rng, b"Content-Length: %d\r\n\r\n" % n) + body
    elif r < 0.09:
        n = rng.choice([2 ** 31, 2 ** 63, 10 ** 30])
    return b"Content-Length: %d\r\n\r\n" % max(n, 0) + body


def worker(path, rng, quota, counters, errors, received):
    sent = 0
    while sent < quota:
        framing = "lsp" if rng.random() < 0.5 else "line"
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
        except OSError as e:
            errors.append(f"connect failed: {e}")
            time.sleep(0.05)
            continue
        stop = threading.Event()
        closed = threading.Event()

        def drain():
            got = 0
            try:
                while not stop.is_set():
                    chunk = s.recv(1 << 16)
                    if not chunk:
                        break
                    got += chunk.count(b'"jsonrpc"')
            except OSError:
                pass
            closed.set()
            received.append(got)
        t = threading.Thread(target=drain, daemon=True)
        t.start()
        try:
            for _ in range(rng.randint(50, 400)):
                if sent >= quota or closed.is_set():   # the daemon closed it: reconnect
                    break
                data = frame(rng, framing)
                cut = rng.randint(0, len(data))         # split frames across writes at random
                s.sendall(data[:cut])
                s.sendall(data[cut:])
                sent += 1
        except OSError:
            pass                                         # the daemon closed a connection it could not read
        if rng.random() < 0.1:                           # vanish abruptly
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        else:                                            # stop sending, read the replies until closed
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            closed.wait(5)
        stop.set()
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
        t.join(5)
    counters.append(sent)


def test_fuzz_100k_frames_without_a_crash(start):
    d = start("--max-message-bytes", "65536", "--max-queue", "64")
    errors, counters, received = [], [], []
    workers = 8
    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(d.socket_path, random.Random(SEED + i), FRAMES // workers + 1,
                                                     counters, errors, received)) for i in range(workers)]
    for t in threads:
        t.start()
    # Meanwhile a well-behaved client keeps being served.
    served = 0
    with Conn(d.socket_path, "lsp") as good:
        while any(t.is_alive() for t in threads):
            served += good.call("status", request_id=served)["id"] == served
            time.sleep(0.05)
    for t in threads:
        t.join()
    total = sum(counters)
    log = d.log()
    print(f"fuzz (seed {SEED}): {total} frames in {time.monotonic() - t0:.1f} s over {workers} workers, {len(received)} "
          f"connections, {sum(received)} messages back; {served} status calls served meanwhile; "
          f"{log.count('unreadable LSP header')} bad headers, {log.count('exceeds --max-message-bytes')} oversized")
    assert d.alive(), d.log()[-3000:]
    assert total >= FRAMES
    assert not errors, errors[:5]
    assert served > 0
    assert sum(received) > total // 4, "most frames reached the parser and were answered"
    with Conn(d.socket_path, "line") as c:
        r = c.call("status")
        assert r["result"]["connections"] >= 1
