"""Scheduling over the socket: progress, cancellation (queued and running), interleaving, disconnects,
queue limit, status latency under load, checkpoints."""

import json
import os
import signal
import statistics
import time

from helpers import notification, request, status_storm


def _job_is_busy(r):
    assert r["result"]["jobs"][0]["state"] in ("running", "paused"), r


def test_progress_begin_rising_reports_end(daemon, contract):
    with daemon.connect("lsp") as c:
        notes = []
        r = c.call("test/sleep", {"units": 20, "unitMs": 5, "workDoneToken": "job-1"}, notifications=notes)
        assert r["result"]["units"] == 20
        values = [n["params"]["value"] for n in notes]
        assert all(n["method"] == "$/progress" and n["params"]["token"] == "job-1" for n in notes)
        for n in notes:
            contract.check_progress(n["params"])
        assert values[0]["kind"] == "begin" and values[0]["percentage"] == 0 and values[0]["title"]
        assert values[-1]["kind"] == "end"
        reports = [v for v in values if v["kind"] == "report"]
        pcts = [v["percentage"] for v in reports]
        assert len(reports) >= 10
        assert pcts == sorted(set(pcts)), "strictly rising"
        assert all(v.get("message") for v in reports)


def test_integer_token_and_no_token(daemon):
    with daemon.connect() as c:
        notes = []
        c.call("test/sleep", {"units": 3, "unitMs": 1, "workDoneToken": 77}, notifications=notes)
        assert notes and all(n["params"]["token"] == 77 for n in notes)
        notes = []
        c.call("test/sleep", {"units": 3, "unitMs": 1}, request_id=2, notifications=notes)
        assert notes == []


def test_cancel_running_job(daemon):
    with daemon.connect() as c:
        notes = []
        c.send(request("test/sleep", {"units": 10000, "unitMs": 10, "workDoneToken": "t"}, 1))
        while not any(n["params"]["value"]["kind"] == "report" for n in notes):
            notes.append(c.recv())
        t0 = time.monotonic()
        c.send(notification("$/cancelRequest", {"id": 1}))
        r = c.recv_reply(1, notifications=notes)
        assert r["error"]["code"] == -32800
        assert time.monotonic() - t0 < 0.5, "stops at the next unit boundary"
        assert notes[-1]["params"]["value"] == {"kind": "end", "message": "cancelled"}
        assert c.call("status", None, 2)["result"]["jobs"] == []


def test_cancel_queued_job_answers_at_once(daemon):
    with daemon.connect() as c:
        c.send(request("test/sleep", {"units": 1, "unitMs": 1500}, "long"))
        time.sleep(0.1)
        c.send(request("test/sleep", {"units": 5, "unitMs": 1}, "queued"))
        st = c.call("status", None, "s")["result"]
        assert [j["state"] for j in st["jobs"]] == ["running", "queued"]
        assert st["queue"] == 1
        t0 = time.monotonic()
        c.send(notification("$/cancelRequest", {"id": "queued"}))
        r = c.recv_reply("queued")
        assert r["error"]["code"] == -32800
        assert time.monotonic() - t0 < 0.3, "a queued job does not wait for the running unit"
        assert c.recv_reply("long", timeout=5)["result"]["units"] == 1


def test_short_job_finishes_before_long_one_started_earlier(daemon):
    with daemon.connect() as c:
        c.send(request("test/sleep", {"units": 100, "unitMs": 20, "spin": True}, "long"))
        time.sleep(0.2)
        t0 = time.monotonic()
        r = c.call("test/sleep", {"units": 5, "unitMs": 20, "spin": True}, "short", timeout=30)
        elapsed = time.monotonic() - t0
        assert r["result"]["units"] == 5
        assert elapsed < 1.0, f"short job took {elapsed:.2f}s: not interleaved"
        st = c.call("status", None, "s")["result"]
        assert [j["method"] for j in st["jobs"]] == ["test/sleep"], "the long one is still running"
        c.send(notification("$/cancelRequest", {"id": "long"}))
        assert c.recv_reply("long")["error"]["code"] == -32800


def test_disconnect_mid_job_cancels_it(daemon):
    c = daemon.connect()
    c.send(request("test/sleep", {"units": 100000, "unitMs": 5}, 1))
    c.send(request("test/sleep", {"units": 100000, "unitMs": 5}, 2))
    time.sleep(0.2)
    with daemon.connect() as s:
        assert len(s.call("status")["result"]["jobs"]) == 2
        c.close()
        deadline = time.monotonic() + 3
        while s.call("status")["result"]["jobs"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert s.call("status")["result"]["jobs"] == []
    assert "cancelled 2 request(s)" in daemon.log()


def test_half_close_still_gets_its_reply(daemon):
    """A client that shuts down its writing side (like `socat` after stdin ends) is still answered."""
    import socket as s
    with daemon.connect() as c:
        c.send(request("test/sleep", {"units": 5, "unitMs": 20}, 1))
        c.sock.shutdown(s.SHUT_WR)
        assert c.recv_reply(1)["result"]["units"] == 5
        assert c.closed_by_peer()


def test_queue_limit_is_a_clear_busy_error(start):
    d = start("--max-queue", "3")
    with d.connect() as c:
        for i in range(3):
            c.send(request("test/sleep", {"units": 3, "unitMs": 50}, i))
        r = c.call("test/sleep", {"units": 1}, request_id="x")
        assert r["error"]["code"] == -32001
        assert "--max-queue" in r["error"]["message"]
        done = {}
        while len(done) < 3:   # equal jobs share the worker's time: they may finish in any order
            m = c.recv(timeout=5)
            done[m["id"]] = m
        assert sorted(done) == [0, 1, 2] and all(m["result"]["units"] == 3 for m in done.values())
        assert c.call("test/sleep", {"units": 1, "unitMs": 1}, request_id="y")["result"]["units"] == 1


def test_status_is_not_held_behind_a_long_unit_with_16_clients(daemon):
    """DESIGN §7: status answers from the event loop while the worker is busy. The job's units spin for
    3 s each, so a status that waited for the worker would take seconds; the bound (1 s) holds on a
    loaded machine. The figure DESIGN asks for (p99 < 50 ms) is a speed and is measured on a quiet
    machine by `erudiff-bench daemon` and printed here (pytest -s)."""
    with daemon.connect() as owner:
        owner.send(request("test/sleep", {"units": 100000, "unitMs": 3000, "spin": True}, "train"))
        time.sleep(0.2)
        lat = status_storm(daemon, 16, 40, timeout=60, check_status=_job_is_busy)[0]
        assert len(lat) == 16 * 40
        p99 = lat[int(0.99 * (len(lat) - 1))]
        print(f"status latency, {len(lat)} calls: median {statistics.median(lat) * 1000:.2f} ms, "
              f"p99 {p99 * 1000:.2f} ms, max {lat[-1] * 1000:.2f} ms (load average {os.getloadavg()[0]:.1f})")
        assert lat[-1] < 1.0, f"max {lat[-1] * 1000:.1f} ms: status waited for the worker"
        owner.send(notification("$/cancelRequest", {"id": "train"}))
        assert owner.recv_reply("train", timeout=10)["error"]["code"] == -32800


def test_checkpoints_every_n_units_and_at_sigterm(start):
    d = start("--checkpoint-every", "5")
    path = os.path.join(d.state_dir, "test", "run1.json")
    with d.connect() as c:
        c.send(request("test/sleep", {"units": 100000, "unitMs": 2, "checkpoint": "run1"}, 1))
        seen = set()
        deadline = time.monotonic() + 10
        while len(seen) < 3 and time.monotonic() < deadline:
            try:
                with open(path) as f:
                    seen.add(json.load(f)["units"])
            except (OSError, ValueError):
                pass
            time.sleep(0.005)
        assert len(seen) >= 3 and all(u % 5 == 0 for u in seen), seen
        assert oct(os.stat(path).st_mode & 0o777) == "0o600"
        assert oct(os.stat(d.state_dir).st_mode & 0o777) == "0o700"
        # SIGTERM: checkpoint, the job answers -32003, the socket file goes away.
        before = c.call("status", None, 2)["result"]["jobs"][0]["units"]
        d.proc.send_signal(signal.SIGTERM)
        r = c.recv_reply(1)
        assert r["error"]["code"] == -32003
    assert d.proc.wait(10) == 0
    d.expected_exit = True
    with open(path) as f:
        assert json.load(f)["units"] >= before
    assert not os.path.exists(d.socket_path)
    assert "checkpoint at shutdown done" in d.log()


def test_kill_9_then_restart_keeps_last_checkpoint(start, workdir):
    d = start("--checkpoint-every", "10")
    path = os.path.join(d.state_dir, "test", "k9.json")
    with d.connect() as c:
        c.send(request("test/sleep", {"units": 100000, "unitMs": 1, "checkpoint": "k9"}, 1))
        deadline = time.monotonic() + 10
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        d.proc.kill()
        d.proc.wait()
        d.expected_exit = True
    with open(path) as f:
        saved = json.load(f)
    assert saved["units"] % 10 == 0 and saved["units"] > 0
    leftovers = [n for n in os.listdir(os.path.dirname(path)) if n.endswith(".tmp")]
    assert leftovers in ([], [n for n in leftovers if n.startswith(".k9.json.")])
    d2 = start()    # the stale socket left by kill -9 is replaced
    with d2.connect() as c:
        assert c.call("status")["result"]["jobs"] == []
    assert "replaced a stale socket" in d2.log()
