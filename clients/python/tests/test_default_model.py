"""The default model: without --model mini=PATH the daemon finds mini through $ERUDIFF_MODELS or above its
binary; when there is none it still starts, says so, and the methods that need a model answer -32002
saying how to load one — until models/load loads it."""

import os
import shutil

import helpers


def test_mini_is_found_through_erudiff_models(start, mini_model):
    env = dict(os.environ, ERUDIFF_MODELS=os.path.dirname(mini_model))
    d = start(model="default", env=env)
    with d.connect() as c:
        models = c.call("status")["result"]["models"]
    assert [(m["name"], m["path"]) for m in models] == [("mini", mini_model)]
    assert "(the default model)" in d.log()


def test_without_any_model_it_starts_and_says_how_to_load_one(start, workdir, mini_model, contract):
    # A copy of the binary outside the checkout: no folder above it holds models/mini.
    bindir = os.path.join(workdir, "bin")
    os.makedirs(bindir)
    exe = os.path.join(bindir, "erudiffd")
    shutil.copy(helpers.daemon_binary(), exe)
    env = {k: v for k, v in os.environ.items() if k != "ERUDIFF_MODELS"}
    d = start(model="default", env=env, binary=exe, cwd=workdir)
    assert "no model mini found" in d.log() and "models/load" in d.log()
    with d.connect(timeout=60) as c:
        assert c.call("status")["result"]["models"] == []
        r = c.call("sample", {"prompt": "a school zone road sign"})
        contract.check_reply("sample", r)
        assert r["error"]["code"] == -32002 and "models/load" in r["error"]["message"]
        r = c.call("models/load", {"name": "mini", "path": mini_model}, timeout=60)
        assert r["result"]["name"] == "mini"
        r = c.call("sample", {"prompt": "a school zone road sign", "steps": 2}, timeout=60)
        assert len(r["result"]["images"]) == 1
