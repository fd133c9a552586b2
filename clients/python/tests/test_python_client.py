"""The stdlib Python client: against the real daemon (lifecycle, progress, cancellation, typed
errors, batches, concurrency) and, for the engine methods not served yet, against the OpenRPC
contract through a stand-in that validates every request."""

import os
import threading
import time

import pytest

import erudiff
from erudiff import Client
from fake_daemon import FakeDaemon


def test_context_manager_status_and_initialize(daemon, contract):
    with Client(daemon.socket_path) as c:
        contract.check_result("status", c.status())
        contract.check_result("initialize", c.initialize(clientInfo={"name": "pytest"}))


def test_socket_from_environment(daemon, monkeypatch):
    monkeypatch.setenv("ERUDIFF_SOCKET", daemon.socket_path)
    assert erudiff.default_socket_path() == daemon.socket_path
    with Client() as c:
        assert c.status()["queue"] == 0


def test_cannot_connect_is_daemon_unavailable(workdir):
    with pytest.raises(erudiff.DaemonUnavailable) as e:
        Client(os.path.join(workdir, "nothing.sock"), autostart=False)
    assert "nothing.sock" in str(e.value)


def test_progress_callback_sees_rising_percentages(daemon):
    seen = []
    with Client(daemon.socket_path) as c:
        r = c.call("test/sleep", {"units": 10, "unitMs": 5}, progress=seen.append)
    assert r["units"] == 10
    assert seen[0].kind == "begin" and seen[-1].kind == "end"
    pcts = [p.percentage for p in seen if p.kind == "report"]
    assert pcts == sorted(set(pcts)) and len(pcts) == 9


def test_cancel_with_handle(daemon):
    with Client(daemon.socket_path) as c:
        call = c.request("test/sleep", {"units": 100000, "unitMs": 5})
        time.sleep(0.1)
        call.cancel()
        with pytest.raises(erudiff.RequestCancelled) as e:
            call.result(5)
        assert e.value.code == -32800
        assert c.status()["jobs"] == []


def test_cancel_by_returning_false_from_progress(daemon):
    def stop_at_20(p):
        return not (p.kind == "report" and p.percentage >= 20)
    with Client(daemon.socket_path) as c:
        with pytest.raises(erudiff.RequestCancelled):
            c.call("test/sleep", {"units": 100, "unitMs": 5}, progress=stop_at_20, timeout=10)


def test_typed_errors_carry_codes(start):
    d = start("--max-queue", "1")
    with Client(d.socket_path) as c:
        with pytest.raises(erudiff.MethodNotFound) as e:
            c.call("no/such")
        assert e.value.code == -32601 and e.value.method == "no/such"
        with pytest.raises(erudiff.InvalidParams) as e:
            c.call("test/sleep", {"units": "x"})
        assert '"units"' in e.value.message
        with pytest.raises(erudiff.InternalError):
            c.call("test/sleep", {"units": 2, "unitMs": 1, "failAt": 1})
        busy = c.request("test/sleep", {"units": 50, "unitMs": 10})
        with pytest.raises(erudiff.ServerBusy):
            c.call("test/sleep", {"units": 1})
        busy.cancel()
        with pytest.raises(erudiff.RequestCancelled):
            busy.result(5)
        assert isinstance(erudiff.RpcError.from_error({"code": -32002, "message": "m"}), erudiff.ModelNotLoaded)
        assert isinstance(erudiff.RpcError.from_error({"code": -1, "message": "m"}), erudiff.RpcError)


def test_shutdown_then_exit(start):
    d = start()
    with Client(d.socket_path) as c:
        job = c.request("test/sleep", {"units": 100000, "unitMs": 5})
        time.sleep(0.05)
        assert c.shutdown() is None
        with pytest.raises(erudiff.ShuttingDown):
            job.result(5)
        with pytest.raises(erudiff.InvalidRequest):
            c.status()
        c.exit()
    assert d.proc.wait(10) == 0
    d.expected_exit = True


def test_lost_connection_fails_pending_calls(start):
    d = start()
    c = Client(d.socket_path)
    call = c.request("test/sleep", {"units": 100000, "unitMs": 5})
    d.proc.kill()
    d.proc.wait()
    d.expected_exit = True
    with pytest.raises(erudiff.DaemonUnavailable):
        call.result(5)
    c.close()


def test_batch_and_threads(daemon):
    with Client(daemon.socket_path) as c:
        out = c.batch([("test/echo", {"value": 1}), ("no/such", None), ("status", None)])
        assert out[0] == 1 and isinstance(out[1], erudiff.MethodNotFound) and "uptimeMs" in out[2]
        results = {}

        def worker(k):
            results[k] = [c.call("test/echo", {"value": [k, i]}) for i in range(50)]
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert all(results[k] == [[k, i] for i in range(50)] for k in range(8))


# -- engine methods, checked against the contract -------------------------------------------------

@pytest.fixture
def fake(contract, workdir):
    f = FakeDaemon(contract, os.path.join(workdir, "fake.sock"))
    yield f
    f.close()
    assert not f.errors, f.errors


def test_sample_builds_contract_params_and_images_show_in_jupyter(fake, workdir):
    seen = []
    with Client(fake.path) as c:
        r = c.sample("the flag of Japan", count=2, steps=8, guidance=3.5, seed=7, sampler="sde", adapter=False,
                     model="mini", progress=seen.append)
        assert len(r.images) == 2 and r.elapsed_ms == 3
        im = r.images[0]
        assert im._repr_png_() == fake.png and erudiff.Image.png_size(im.png) == (2, 2)
        assert "<img" in r._repr_html_()
        assert [p.kind for p in seen] == ["begin", "report", "end"]
        out = os.path.join(workdir, "x.png")
        assert open(im.save(out), "rb").read() == fake.png
        d = os.path.join(workdir, "imgs")
        os.mkdir(d)
        r = c.sample(prompts=["a school zone road sign", "a yellow pentagon"], output_dir=d)
        assert r.images[0].path.startswith(d) and r.images[0]._repr_png_() == fake.png
    params = fake.requests[0]["params"]
    assert params == {"prompt": "the flag of Japan", "count": 2, "steps": 8, "guidance": 3.5, "seed": 7,
                      "sampler": "sde", "adapter": False, "model": "mini", "workDoneToken": params["workDoneToken"]}


def test_training_and_other_engine_methods_follow_the_contract(fake, contract):
    with Client(fake.path) as c:
        calls = [
            lambda: c.match_distributions([("the flag of Japan", "a red circle on a white background")], steps=10,
                                          batch_size=2, learning_rate=1e-3, anchors={"perPair": 2, "source": "policy"},
                                          preserve_weight=0.5, lora={"rank": 4, "alpha": 4}, seed=1,
                                          progress=lambda p: None),
            lambda: c.match_distributions(set="world:train"),
            lambda: c.rl_step(["a school zone road sign"], group_size=4, rounds=2, reward="world", beta=0.5, learning_rate=1e-4,
                              kl_weight=0.1, seed=3),
            lambda: c.rl_step(samples={"s-1": 0.0, "s-2": 1.0}),
            lambda: c.rl_step(samples=[("s-1", 0.5)]),
            lambda: c.evaluate("world:test-concept", samples_per_item=2, seed=1),
            lambda: c.evaluate(items=[{"implicit": "i", "explicit": "e", "expect": {"shape": "circle"}}]),
            lambda: c.encode("a school zone road sign"),
            lambda: c.models_list(),
            lambda: c.models_load("mini2", "/models/mini"),
            lambda: c.models_unload("mini2"),
            lambda: c.adapters_save("/tmp/a.safetensors"),
            lambda: c.adapters_save(),
            lambda: c.adapters_load("/tmp/a.safetensors", model="mini"),
            lambda: c.adapters_reset(lora={"rank": 2, "alpha": 2}),
        ]
        for call in calls:
            call()
    methods = [r["method"] for r in fake.requests if "id" in r]
    assert methods == ["matchDistributions", "matchDistributions", "rlStep", "rlStep", "rlStep", "evaluate",
                       "evaluate", "encode", "models/list", "models/load", "models/unload", "adapters/save",
                       "adapters/save", "adapters/load", "adapters/reset"]
    assert set(contract.methods) >= set(methods)


def test_python_m_erudiff(daemon):
    import json
    import subprocess
    import sys
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(erudiff.__file__)))
    r = subprocess.run([sys.executable, "-m", "erudiff", "--socket", daemon.socket_path, "status"],
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0 and json.loads(r.stdout)["queue"] == 0
    r = subprocess.run([sys.executable, "-m", "erudiff", "--socket", daemon.socket_path, "call", "test/sleep",
                        '{"units": 3, "unitMs": 5}'], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0 and json.loads(r.stdout)["units"] == 3 and "%" in r.stderr
    r = subprocess.run([sys.executable, "-m", "erudiff", "--socket", daemon.socket_path, "call", "no/such"],
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 1 and "-32601" in r.stderr
    r = subprocess.run([sys.executable, "-m", "erudiff", "--no-autostart", "--socket", daemon.socket_path + ".x", "status"],
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 3
