"""Long training jobs on the real daemon: cancellation within one step with the adapter kept, rising
progress, checkpoints surviving kill -9, shutdown, the adapter's owner, and scheduling — a one-image
sample and status answers while matchDistributions runs."""

import os
import signal
import statistics
import time

import helpers
from helpers import notification, request

PAIR = [{"implicit": "the flag of Japan", "explicit": "a red circle on a white background"}]
# A matchDistributions that would run for a long time: one pair, cheap steps.
ENDLESS = {"pairs": PAIR, "steps": 100000, "batchSize": 1, "anchors": {"perPair": 1, "steps": 2},
           "dislocation": False, "freshAdapter": True}


def wait_training(d, min_steps=3, timeout=120):
    """Polls status until the model's adapter has taken `min_steps` training steps (progress reports
    of a 100000-step job come only per percent); returns the times at which the step count rose."""
    times, last = [], None
    deadline = time.monotonic() + timeout
    with d.connect() as s:
        while time.monotonic() < deadline:
            a = s.call("status")["result"]["models"][0]["adapter"]
            steps = a["steps"] if a and "training" in a else None
            if steps is not None and steps != last:
                times.append(time.monotonic())
                last = steps
                if steps >= min_steps:
                    return times
            time.sleep(0.005)
    raise AssertionError(f"no {min_steps} training steps in {timeout} s")


def adapter(d):
    with d.connect() as c:
        return c.call("status")["result"]["models"][0]["adapter"]


def test_cancel_running_match_distributions_within_one_step_keeps_the_adapter(mini_model, start, contract):
    d = start(model=mini_model)
    notes = []
    with d.connect(timeout=120) as c:
        c.send(request("matchDistributions", dict(ENDLESS, workDoneToken="m"), "m"))
        times = wait_training(d, min_steps=4)
        step = max(b - a for a, b in zip(times, times[1:]))
        t0 = time.monotonic()
        c.send(notification("$/cancelRequest", {"id": "m"}))
        r = c.recv_reply("m", timeout=60, notifications=notes)
        latency = time.monotonic() - t0
    print(f"cancel answered in {latency * 1000:.0f} ms; longest training step seen {step * 1000:.0f} ms")
    contract.check_reply("matchDistributions", r)
    assert r["error"]["code"] == -32800
    assert latency < 2 * step + 0.5, (latency, step)
    data = r["error"]["data"]
    assert data["steps"] >= 4 and data["adapterSteps"] == data["steps"] and os.path.exists(data["checkpoint"])
    assert "keeps" in data["note"]
    assert notes[-1]["params"]["value"] == {"kind": "end", "message": "cancelled"}
    a = adapter(d)
    assert a["steps"] == data["steps"] and a["saved"] and "training" not in a


def test_progress_of_match_distributions_rises_to_the_end(mini_model, start, contract):
    d = start(model=mini_model)
    notes = []
    with d.connect(timeout=120) as c:
        r = c.call("matchDistributions", {"pairs": PAIR, "steps": 6, "batchSize": 1, "anchors": {"perPair": 1, "steps": 2},
                                          "dislocation": {"samplesPerPair": 2, "anchors": 1}, "workDoneToken": 9},
                   timeout=120, notifications=notes)
    contract.check_reply("matchDistributions", r)
    values = [n["params"]["value"] for n in notes]
    assert values[0]["kind"] == "begin" and values[-1]["kind"] == "end"
    pct = [v["percentage"] for v in values[1:-1]]
    assert pct == sorted(pct) and len(set(pct)) == len(pct) and len(pct) >= 6
    assert sum(v.get("message", "").startswith("training") for v in values) >= 5


def test_kill_9_mid_training_then_restart_restores_the_last_checkpoint(mini_model, start, workdir):
    d = start("--checkpoint-every", "3", model=mini_model)
    with d.connect(timeout=120) as c:
        c.send(request("matchDistributions", ENDLESS, 1))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            a = adapter(d)
            if a and a["steps"] >= 8:
                break
            time.sleep(0.05)
        seen = a["steps"]
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
    d.expected_exit = True
    d2 = start("--checkpoint-every", "3", model=mini_model)
    restored = adapter(d2)
    print(f"killed after >= {seen} steps; restored {restored['steps']} steps")
    assert restored["restoredFrom"].startswith(d2.state_dir)
    assert restored["steps"] % 3 == 0 and restored["steps"] >= seen - 3, "at most one checkpoint interval lost"
    assert "restored its adapter" in d2.log()
    with d2.connect() as c:
        on = c.call("sample", {"prompt": "the flag of Japan", "seed": 1, "steps": 3})["result"]["images"][0]["png"]
        off = c.call("sample", {"prompt": "the flag of Japan", "seed": 1, "steps": 3, "adapter": False})["result"]["images"][0]["png"]
    assert on != off, "the restored adapter is the trained one, not a fresh one"


def test_sigterm_mid_training_checkpoints_and_answers_32003(mini_model, start):
    d = start("--checkpoint-every", "1000", model=mini_model)
    with d.connect(timeout=120) as c:
        c.send(request("matchDistributions", dict(ENDLESS, workDoneToken="t"), 1))
        wait_training(d, min_steps=2)
        d.proc.send_signal(signal.SIGTERM)
        r = c.recv_reply(1, timeout=30, notifications=[])
    assert r["error"]["code"] == -32003 and r["error"]["data"]["steps"] >= 2
    assert d.proc.wait(30) == 0
    d.expected_exit = True
    d2 = start(model=mini_model)
    assert adapter(d2)["steps"] == r["error"]["data"]["adapterSteps"]


def test_the_adapter_has_one_trainer_at_a_time(mini_model, start, contract):
    d = start(model=mini_model)
    with d.connect(timeout=120) as c:
        c.send(request("matchDistributions", dict(ENDLESS, workDoneToken="a"), "a"))
        wait_training(d, min_steps=1)
        for method, params in [("matchDistributions", {"pairs": PAIR, "steps": 1}), ("rlStep", {"prompts": ["a school zone road sign"]}),
                               ("adapters/reset", {}), ("adapters/load", {"path": "/"}), ("models/unload", {"name": "mini"})]:
            with d.connect(timeout=60) as c2:
                r = c2.call(method, params, timeout=60)
            contract.check_reply(method, r)
            assert r["error"]["code"] in (-32001, -32602), (method, r)
            if method != "adapters/load":
                assert r["error"]["code"] == -32001 and "job" in r["error"]["message"], (method, r)
        c.send(notification("$/cancelRequest", {"id": "a"}))
        assert c.recv_reply("a", timeout=60, notifications=[])["error"]["code"] == -32800
    with d.connect() as c2:
        assert c2.call("adapters/reset", {})["result"]["adapter"]["steps"] == 0


def test_disconnect_cancels_training_and_keeps_the_steps(mini_model, start):
    d = start(model=mini_model)
    c = d.connect(timeout=120)
    c.send(request("matchDistributions", dict(ENDLESS, workDoneToken="x"), 1))
    wait_training(d, min_steps=2)
    c.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with d.connect() as s:
            st = s.call("status")["result"]
        if not st["jobs"]:
            break
        time.sleep(0.05)
    assert st["jobs"] == []
    a = st["models"][0]["adapter"]
    assert a["steps"] >= 2 and a["saved"]


def test_16_clients_sample_and_status_while_match_distributions_runs(mini_model, start):
    """DESIGN §7: with training running, 16 clients each get a one-image sample before the training
    ends, and status keeps answering (every call, none stuck behind the job). The p99 figure is a
    speed: printed here (pytest -s) and measured on a quiet machine by `erudiff-bench daemon`; the
    bound asserted (1 s) only catches a status that waits for the worker."""
    d = start(model=mini_model)
    owner = d.connect(timeout=120)
    owner.send(request("matchDistributions", dict(ENDLESS, batchSize=4, workDoneToken="w"), "train"))
    wait_training(d, min_steps=1)
    lat, samples, wall = helpers.status_storm(d, 16, 30, sample=True)
    p99 = lat[int(0.99 * (len(lat) - 1))]
    print(f"{len(lat)} status calls, median {statistics.median(lat) * 1000:.2f} ms, "
          f"p99 {p99 * 1000:.2f} ms, max {lat[-1] * 1000:.2f} ms; 16 one-image samples (20 steps) answered in "
          f"median {statistics.median(samples):.2f} s, max {max(samples):.2f} s; "
          f"load average {os.getloadavg()[0]:.1f}")
    assert len(lat) == 16 * 30 and len(samples) == 16
    with d.connect() as c:
        jobs = c.call("status")["result"]["jobs"]
    assert [j["method"] for j in jobs] == ["matchDistributions"], "the training job is still running"
    assert p99 < 1.0, f"p99 {p99 * 1000:.1f} ms"
    owner.send(notification("$/cancelRequest", {"id": "train"}))
    assert owner.recv_reply("train", timeout=60, notifications=[])["error"]["code"] == -32800
    owner.close()

