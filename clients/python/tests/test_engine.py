"""Every engine method of DESIGN §7 end to end against the real daemon serving a copy of `mini`: replies
checked against protocol/openrpc.json, results checked for what they mean (deterministic seeds, files
written, the adapter's state), and bad params answered -32602 naming the parameter."""

import base64
import json
import math
import os
import re
import struct

import pytest

from helpers import png_max_difference

PAIRS = [{"implicit": "the flag of Japan", "explicit": "a red circle on a white background"},
         {"implicit": "a school zone road sign", "explicit": "a yellow pentagon on a white background"}]
# Small enough for a test: few steps, one anchor of 4 sampler steps, a cheap dislocation.
SMALL_MATCH = {"pairs": PAIRS, "steps": 3, "batchSize": 2, "anchors": {"perPair": 1, "steps": 4},
               "dislocation": {"samplesPerPair": 2, "anchors": 1}}
SMALL_RL = {"prompts": ["the flag of Japan", "a red circle on a white background"], "groupSize": 3,
            "samplingSteps": 4, "stepsPerRound": 2, "batchSize": 4}


def call(daemon, contract, method, params=None, timeout=120, framing="line"):
    """One request on a fresh connection; the reply is checked against the contract and returned."""
    with daemon.connect(framing, timeout=timeout) as c:
        r = c.call(method, params, timeout=timeout)
    contract.check_reply(method, r)
    return r


def result(daemon, contract, method, params=None, timeout=120):
    r = call(daemon, contract, method, params, timeout)
    assert "result" in r, r
    return r["result"]


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    return struct.unpack(">II", data[16:24])


def test_status_shows_the_model_its_memory_and_no_adapter(engine, contract):
    st = result(engine, contract, "status")
    m = {x["name"]: x for x in st["models"]}["mini"]
    assert m["path"].endswith("/mini")
    assert m["memory"]["weights"] > 1_000_000 and m["memory"]["textEncoder"] > 10_000_000
    assert m["bytes"] >= m["memory"]["weights"] + m["memory"]["textEncoder"]
    assert st["memory"]["rss"] > 0 and st["memory"]["peak"] >= st["memory"]["rss"]


def test_sample_returns_base64_pngs_with_ids_and_seeds(engine, contract):
    r = result(engine, contract, "sample", {"prompt": "the flag of Japan", "seed": 7, "steps": 4})
    (im,) = r["images"]
    assert im["seed"] == 7 and im["prompt"] == "the flag of Japan" and (im["width"], im["height"]) == (32, 32)
    assert re.fullmatch(r"s-[0-9a-f]+-\d+", im["id"])
    assert png_size(base64.b64decode(im["png"])) == (32, 32)
    again = result(engine, contract, "sample", {"prompt": "the flag of Japan", "seed": 7, "steps": 4})["images"][0]
    other = result(engine, contract, "sample", {"prompt": "the flag of Japan", "seed": 8, "steps": 4})["images"][0]
    assert again["png"] == im["png"], "the same seed and settings give the same image"
    assert other["png"] != im["png"]
    assert again["id"] != im["id"]


def test_sample_several_prompts_counts_seeds_and_files(engine, contract, workdir):
    out = os.path.join(workdir, "imgs")
    r = result(engine, contract, "sample", {"prompts": ["a school zone road sign", "the flag of Japan"], "count": 2, "seed": 100,
                                            "steps": 3, "output": {"dir": out}})
    ims = r["images"]
    assert [i["prompt"] for i in ims] == ["a school zone road sign"] * 2 + ["the flag of Japan"] * 2
    assert [i["seed"] for i in ims] == [100, 101, 102, 103]
    for i in ims:
        assert "png" not in i and i["path"] == os.path.join(out, i["id"] + ".png")
        assert png_size(open(i["path"], "rb").read()) == (32, 32)
    b64 = result(engine, contract, "sample", {"prompt": "the flag of Japan", "seed": 102, "steps": 3})["images"][0]
    # Image k uses seed + k. Alone or in a batch of 4 it is the same image, up to the last bit of the
    # float sums (batches are split across threads differently).
    assert png_max_difference(base64.b64decode(b64["png"]), open(ims[2]["path"], "rb").read()) <= 2
    assert png_max_difference(base64.b64decode(b64["png"]), open(ims[1]["path"], "rb").read()) > 8


def test_sample_sde_and_no_adapter(engine, contract):
    r = result(engine, contract, "sample", {"prompt": "a school zone road sign", "seed": 1, "steps": 4, "sampler": "sde",
                                            "noiseLevel": 0.5, "adapter": False, "guidance": 1})
    assert r["images"][0]["adapter"] is False


def test_encode_gives_wordpiece_ids_and_normalised_pooled_vectors(engine, contract):
    r = result(engine, contract, "encode", {"prompts": ["a stop sign", "the flag of Japan"]})
    assert r["tokens"] == [[101, 1037, 2644, 3696, 102], [101, 1996, 5210, 1997, 2900, 102]]
    assert [len(p) for p in r["pooled"]] == [384, 384]
    for p in r["pooled"]:
        assert abs(sum(x * x for x in p) - 1) < 1e-3
    assert r["maxLength"] >= 6


def test_encode_of_many_prompts_runs_in_passes_that_change_nothing(engine, contract):
    # 130 prompts are three passes of the text encoder (64 + 64 + 2), with $/progress between them;
    # each row is the same as that prompt encoded alone.
    prompts = [f"a red circle number {i}" for i in range(130)]
    notes = []
    with engine.connect("line", timeout=120) as c:
        r = c.call("encode", {"prompts": prompts, "workDoneToken": "enc"}, timeout=120, notifications=notes)
    contract.check_reply("encode", r)
    r = r["result"]
    assert len(r["tokens"]) == len(r["pooled"]) == 130
    reports = [n["params"]["value"] for n in notes if n["method"] == "$/progress"]
    assert reports[0]["kind"] == "begin" and reports[-1]["kind"] == "end"
    assert [v["message"] for v in reports if v["kind"] == "report"] == ["64 of 130 prompts", "128 of 130 prompts"]
    for i in (0, 63, 64, 129):
        alone = result(engine, contract, "encode", {"prompts": [prompts[i]]})
        assert alone["tokens"][0] == r["tokens"][i]
        assert max(abs(a - b) for a, b in zip(alone["pooled"][0], r["pooled"][i])) < 1e-6
    assert r["pooled"][0] != r["pooled"][1]


BAD = [
    ("sample", {}, "prompt"),
    ("sample", {"prompt": 3}, "prompt"),
    ("sample", {"prompt": "x", "prompts": ["y"]}, "prompts"),
    ("sample", {"prompt": "x", "steps": 0}, "steps"),
    ("sample", {"prompt": "x", "count": 2000}, "count"),
    ("sample", {"prompt": "x", "sampler": "euler"}, "sampler"),
    ("sample", {"prompt": "x", "noiseLevel": 0.5}, "noiseLevel"),
    ("sample", {"prompt": "x", "output": {"dir": "relative/dir"}}, "output.dir"),
    ("sample", {"prompt": "x", "output": {"folder": "/tmp"}}, "output.dir"),
    ("sample", {"prompt": "x", "seed": -1}, "seed"),
    ("sample", {"prompt": "x", "bogus": 1}, "bogus"),
    ("matchDistributions", {"steps": "many"}, "steps"),
    ("matchDistributions", {"pairs": [{"implicit": "a"}]}, "pairs[0].explicit"),
    ("matchDistributions", {"pairs": ["a"]}, "pairs[0]"),
    ("matchDistributions", {"set": "world:nope"}, "set"),
    ("matchDistributions", {"anchors": {"perPair": 0}}, "anchors.perPair"),
    ("matchDistributions", {"anchors": {"source": "dataset"}}, "anchors.source"),
    ("matchDistributions", {"anchors": {"bogus": 1}}, "anchors.bogus"),
    ("matchDistributions", {"anchors": {"verify": "yes"}}, "anchors.verify"),
    ("matchDistributions", {"anchors": {"verify": True, "source": "policy"}}, "anchors.verify"),
    ("matchDistributions", {"anchors": {"verify": True, "perPair": 4, "maxDraws": 3}}, "anchors.maxDraws"),
    ("matchDistributions", {"anchors": {"verify": True}, "pairs": [{"implicit": "x", "explicit": "a nice day"}]},
     "anchors.verify"),
    ("matchDistributions", {"lora": {"rank": 0}}, "lora.rank"),
    ("matchDistributions", {"learningRate": -1}, "learningRate"),
    ("matchDistributions", {"timeSampling": "gaussian"}, "timeSampling"),
    ("matchDistributions", {"dislocation": 3}, "dislocation"),
    ("matchDistributions", {"matchTarget": "truth"}, "matchTarget"),
    ("matchDistributions", {"matchTarget": "anchor", "anchors": {"source": "policy"}}, "matchTarget"),
    ("rlStep", {"groupSize": 1}, "groupSize"),
    ("rlStep", {"prompts": ["a purple cat playing chess"]}, "prompts[0]"),
    ("rlStep", {"prompts": ["a school zone road sign"], "set": "world:train"}, "set"),
    ("rlStep", {"samples": [{"id": "nope", "reward": 1}]}, "samples[0].id"),
    ("rlStep", {"samples": [{"id": "x"}]}, "samples[0].reward"),
    ("rlStep", {"samples": [{"id": "x", "reward": 1}], "reward": "world"}, "reward"),
    ("rlStep", {"kinds": ["superficial"]}, "kinds"),
    ("rlStep", {"reward": "clip"}, "reward"),
    ("evaluate", {"set": "world:nope"}, "set"),
    ("evaluate", {"set": 3}, "set"),
    ("evaluate", {"samplesPerItem": 0}, "samplesPerItem"),
    ("evaluate", {"items": [{"implicit": "x"}]}, "items"),
    ("evaluate", {"set": "world:train", "items": []}, "items"),
    ("encode", {}, "prompts"),
    ("encode", {"prompts": []}, "prompts"),
    ("encode", {"prompts": [1]}, "prompts[0]"),
    ("models/load", {"name": "x"}, "path"),
    ("models/load", {"name": "../x", "path": "/tmp"}, "name"),
    ("models/load", {"name": "x", "path": "relative"}, "path"),
    ("models/load", {"name": "x", "path": "/nonexistent/model"}, "path"),
    ("models/unload", {}, "name"),
    ("adapters/save", {"path": "relative.safetensors"}, "path"),
    ("adapters/load", {}, "path"),
    ("adapters/load", {"path": "/nonexistent.safetensors"}, "path"),
    ("adapters/reset", {"lora": {"rank": "big"}}, "lora.rank"),
    ("adapters/reset", {"lora": {"rank": 2}, "remove": True}, "remove"),
    ("images/grid", {"path": "/tmp/x.png"}, "rows"),
    ("images/grid", {"rows": [[{"id": "nope"}]], "path": "/tmp/x.png"}, "rows[0][0]"),
    ("images/grid", {"rows": [["relative.png"]], "path": "/tmp/x.png"}, "rows[0][0]"),
    ("images/grid", {"rows": [[None]]}, "path"),
]


@pytest.mark.parametrize("method,params,name", BAD, ids=[f"{m}-{n}-{i}" for i, (m, _, n) in enumerate(BAD)])
def test_bad_params_name_the_parameter(engine, contract, method, params, name):
    r = call(engine, contract, method, params)
    assert r["error"]["code"] == -32602, r
    assert f'"{name}' in r["error"]["message"], r["error"]["message"]


@pytest.mark.parametrize("method,params", [
    ("sample", {"prompt": "x"}), ("matchDistributions", {}), ("rlStep", {}), ("evaluate", {}),
    ("encode", {"prompts": ["x"]}), ("adapters/save", {}), ("adapters/load", {"path": "/tmp"}),
    ("adapters/reset", {}), ("models/unload", {"name": "nope"}),
])
def test_unknown_model_is_32002_saying_how_to_load_one(engine, contract, method, params):
    if method != "models/unload":
        params = dict(params, model="nope")
    r = call(engine, contract, method, params)
    assert r["error"]["code"] == -32002, r
    assert r["error"]["data"]["model"] == "nope" and "mini" in r["error"]["data"]["loaded"]
    assert "models/load" in r["error"]["message"] and "--model" in r["error"]["message"]


def test_match_distributions_trains_and_checkpoints_the_adapter(engine, contract):
    r = result(engine, contract, "matchDistributions", dict(SMALL_MATCH, freshAdapter=True))
    assert r["steps"] == 3 and len(r["loss"]) == 3 and len(r["matchLoss"]) == 3
    assert all(x > 0 for x in r["loss"])
    assert r["dislocationBefore"] > 0 and r["dislocationAfter"] > 0
    assert set(r["dislocation"]["before"]["perItem"]) == {"the flag of Japan", "a school zone road sign"}
    assert r["adapterSteps"] == 3 and os.path.exists(r["checkpoint"])
    a = result(engine, contract, "status")["models"][0]["adapter"]
    assert a["steps"] == 3 and a["saved"] and a["rank"] == 16 and a["checkpoint"]["path"] == r["checkpoint"]
    # The current adapter is trained on (steps add up); another shape without freshAdapter is an error.
    r = result(engine, contract, "matchDistributions", dict(SMALL_MATCH, steps=2, dislocation=False))
    assert r["adapterSteps"] == 5 and r["dislocationBefore"] is None and r["anchorCheck"] is None
    r = call(engine, contract, "matchDistributions", dict(SMALL_MATCH, lora={"rank": 4}))
    assert r["error"]["code"] == -32602 and "freshAdapter" in r["error"]["message"]


def test_match_distributions_with_verified_anchors(engine, contract):
    # Up to 2 anchors per prompt are drawn and read by the verifier; a prompt with no accepted one
    # is both short and none (1 anchor per pair wanted).
    r = result(engine, contract, "matchDistributions", dict(SMALL_MATCH, steps=1, dislocation=False, freshAdapter=True,
                                                            anchors={"perPair": 1, "steps": 4, "verify": True, "maxDraws": 2}))
    c = r["anchorCheck"]
    assert 2 <= c["verified"] <= 4 and 0 <= c["accepted"] <= c["verified"]
    assert c["short"] == c["none"] and 0 <= c["none"] <= 2
    assert c["accepted"] >= 2 - c["none"]


def test_match_distributions_anchor_target_trains_on_the_anchors_velocities(engine, contract):
    # Same seed and draws, another target for the implicit rows: at the first step (a fresh adapter,
    # so the policy is the reference) the matching term against the anchors' own velocities ε − x0
    # is well above the one against the reference's average over its images; runs are repeatable.
    def run(target):
        r = result(engine, contract, "matchDistributions",
                   dict(SMALL_MATCH, steps=2, dislocation=False, freshAdapter=True, matchTarget=target))
        assert r["steps"] == 2 and all(math.isfinite(x) for x in r["loss"] + r["matchLoss"])
        return r
    ref, anchor = run("reference"), run("anchor")
    assert anchor["matchLoss"][0] > ref["matchLoss"][0] * 1.5
    assert run("anchor")["loss"] == anchor["loss"]


def test_match_distributions_on_a_set(engine, contract):
    r = result(engine, contract, "matchDistributions", {"set": "world:test-concept", "steps": 1, "batchSize": 2,
                                                        "anchors": {"perPair": 1, "steps": 2}, "dislocation": False})
    assert r["steps"] == 1 and r["pairs"] == 49


def test_rl_step_with_world_rewards(engine, contract):
    r = result(engine, contract, "rlStep", SMALL_RL)
    assert r["rounds"] == 1 and r["perRound"][0]["groups"] == 2
    assert 0 <= r["rewardMean"] <= 1 and r["rewardStd"] >= 0
    assert r["steps"] == len(r["losses"]) and r["negatives"] >= 0


def test_rl_step_graded_world_reward_credits_near_misses(engine, contract):
    # The same rollouts (same seed, no training step) rewarded both ways: mini draws some pentagons
    # as round blobs that read as circles, so some samples have the wrong shape, which the graded
    # reward credits by how well the pentagon's template fits them.
    params = {"prompts": ["a red pentagon on a white background", "a red circle on a white background"],
              "groupSize": 4, "samplingSteps": 8, "stepsPerRound": 0, "seed": 3}
    plain = result(engine, contract, "rlStep", params)["perRound"][0]
    graded = result(engine, contract, "rlStep", dict(params, reward="world-graded"))["perRound"][0]
    assert plain["rewardMean"] < 1
    assert graded["rewardMean"] > plain["rewardMean"]
    assert graded["skippedGroups"] <= plain["skippedGroups"]


def test_rl_step_with_caller_rewards_for_sample_ids(engine, contract):
    ims = result(engine, contract, "sample", {"prompt": "the flag of Japan", "count": 4, "seed": 5, "steps": 3})["images"]
    samples = [{"id": im["id"], "reward": rw} for im, rw in zip(ims, [0.0, 1.0, 0.25, 1.0])]
    before = result(engine, contract, "status")["models"][0]["adapter"]["steps"]
    r = result(engine, contract, "rlStep", {"samples": samples, "stepsPerRound": 2, "batchSize": 2})
    assert r["rewardMean"] == pytest.approx(0.5625)
    assert r["negatives"] == 2, "the two below-average samples"
    assert r["steps"] == 2 and r["adapterSteps"] == before + 2
    # All equal rewards carry no signal: no step, loss null.
    r = result(engine, contract, "rlStep", {"samples": [dict(s, reward=0.5) for s in samples], "stepsPerRound": 2})
    assert r["steps"] == 0 and r["loss"] is None and r["perRound"][0]["skippedGroups"] == 1


def test_sample_ids_expire_with_a_clear_error(mini_model, start, contract):
    d = start("--sample-store", "2", model=mini_model)
    ims = result(d, contract, "sample", {"prompt": "a school zone road sign", "count": 3, "steps": 2})["images"]
    r = call(d, contract, "rlStep", {"samples": [{"id": ims[0]["id"], "reward": 0}, {"id": ims[1]["id"], "reward": 1}]})
    assert r["error"]["code"] == -32602 and "has expired" in r["error"]["message"] and ims[0]["id"] in r["error"]["message"]
    r = call(d, contract, "rlStep", {"samples": [{"id": "s-1-1", "reward": 0}]})
    assert "is unknown" in r["error"]["message"]
    r = call(d, contract, "rlStep", {"samples": [{"id": ims[1]["id"], "reward": 0}, {"id": ims[2]["id"], "reward": 1}],
                                     "stepsPerRound": 1, "batchSize": 2})
    assert r["result"]["steps"] == 1


def test_evaluate_items_in_the_knowledge_base_format(engine, contract):
    items = [
        {"id": "mine/japan", "concept": "mine/japan", "family": "cultural", "subdomain": "flags", "split": "test-concept",
         "implicit": "the flag of Japan", "explicit": "a red circle on a white background",
         "superficial": "a white circle on a red background",
         "expect": {"shape": "circle", "color": "red", "background": "white"},
         "superficialExpect": {"shape": "circle", "color": "white", "background": "red"}},
    ]
    r = result(engine, contract, "evaluate", {"items": items, "samplesPerItem": 2, "steps": 3,
                                              "dislocation": {"samplesPerPair": 2, "anchors": 1}, "anchors": {"steps": 3}})
    assert r["images"] == 6 and [i["id"] for i in r["items"]] == ["mine/japan"]
    assert r["bySplit"]["test-concept"]["count"] == 1 and r["byFamily"]["cultural"]["explicit"]["images"] == 2
    assert r["dislocation"] is not None and r["items"][0]["dislocation"] == pytest.approx(r["dislocation"])


def test_evaluate_sets_reports_every_split_family_and_subdomain(engine, contract):
    r = result(engine, contract, "evaluate", {"set": ["world:explicit", "world:test-paraphrase"], "samplesPerItem": 1,
                                              "steps": 2, "explicitCount": 4, "dislocation": False, "adapter": False})
    assert set(r["bySplit"]) == {"test-paraphrase"} and r["bySplit"]["test-paraphrase"]["count"] == 35
    assert set(r["byFamily"]) == {"cultural", "spatio-temporal", "natural-science"}
    assert len(r["items"]) == 35 and r["dislocation"] is None
    assert r["explicitCaptions"]["images"] == 4
    # The share of clean images, per group (implicit prompts) and per prompt kind: a count of images.
    for stats, n in ((r["bySplit"]["test-paraphrase"], 35), (r["bySplit"]["test-paraphrase"]["explicit"], 35),
                     (r["explicitCaptions"], 4)):
        assert 0 <= stats["clean"] <= 1 and abs(stats["clean"] * n - round(stats["clean"] * n)) < 1e-6, stats


def test_models_load_list_unload(engine, contract, mini_model):
    r = result(engine, contract, "models/load", {"name": "mini2", "path": mini_model})
    assert r["name"] == "mini2" and r["adapter"] is None and r["path"] == mini_model
    names = [m["name"] for m in result(engine, contract, "models/list")["models"]]
    assert names == ["mini", "mini2"]
    assert result(engine, contract, "sample", {"prompt": "a school zone road sign", "steps": 2, "model": "mini2"})["images"]
    assert result(engine, contract, "models/unload", {"name": "mini2"})["unloaded"] is True
    assert [m["name"] for m in result(engine, contract, "models/list")["models"]] == ["mini"]
    assert call(engine, contract, "models/unload", {"name": "mini2"})["error"]["code"] == -32002
    bad = call(engine, contract, "models/load", {"name": "broken", "path": os.path.dirname(mini_model)})
    assert bad["error"]["code"] == -32602 and "cannot be loaded" in bad["error"]["message"]


def test_adapters_save_reset_load_round_trip(engine, contract, workdir):
    result(engine, contract, "matchDistributions", dict(SMALL_MATCH, steps=2, dislocation=False))
    probe = {"prompt": "the flag of Japan", "seed": 11, "steps": 4}
    trained = result(engine, contract, "sample", probe)["images"][0]["png"]
    base = result(engine, contract, "sample", dict(probe, adapter=False))["images"][0]["png"]
    assert trained != base, "the trained adapter changes the image"
    path = os.path.join(workdir, "a", "flags.safetensors")
    saved = result(engine, contract, "adapters/save", {"path": path})
    steps = saved["steps"]
    assert saved["path"] == path and saved["bytes"] == os.path.getsize(path) and saved["rank"] == 16
    reset = result(engine, contract, "adapters/reset", {})["adapter"]
    assert reset["steps"] == 0 and reset["rank"] == 16
    assert result(engine, contract, "sample", probe)["images"][0]["png"] == base, "a fresh adapter (B = 0) is the base"
    loaded = result(engine, contract, "adapters/load", {"path": path})["adapter"]
    assert loaded["steps"] == steps and loaded["saved"]
    assert result(engine, contract, "sample", probe)["images"][0]["png"] == trained, "the loaded adapter is the saved one"
    small = result(engine, contract, "adapters/reset", {"lora": {"rank": 2, "alpha": 2}})["adapter"]
    assert small["rank"] == 2 and small["parameters"] < loaded["parameters"]
    assert result(engine, contract, "adapters/reset", {"remove": True})["adapter"] is None
    assert result(engine, contract, "status")["models"][0]["adapter"] is None
    r = call(engine, contract, "adapters/save", {})
    assert r["error"]["code"] == -32602 and "no adapter" in r["error"]["message"]


def test_images_grid_from_sample_ids_and_files(engine, contract, workdir):
    ims = result(engine, contract, "sample", {"prompt": "a school zone road sign", "count": 2, "steps": 2,
                                              "output": {"dir": workdir}})["images"]
    path = os.path.join(workdir, "g", "grid.png")
    r = result(engine, contract, "images/grid", {"rows": [[{"id": ims[0]["id"]}, ims[1]["path"]], [None, {"id": ims[1]["id"]}]],
                                                 "rowLabels": ["one", "two"], "columnLabels": ["a", "b"], "scale": 2,
                                                 "path": path})
    assert r["path"] == path and png_size(open(path, "rb").read()) == (r["width"], r["height"])
    assert r["width"] > 2 * 64 and r["height"] > 2 * 64


def test_progress_in_lsp_framing_rises_and_matches_the_contract(engine, contract):
    notes = []
    with engine.connect("lsp", timeout=120) as c:
        r = c.call("sample", {"prompt": "a school zone road sign", "steps": 10, "workDoneToken": "p1"}, timeout=120,
                   notifications=notes)
    contract.check_reply("sample", r)
    values = [n["params"]["value"] for n in notes if n["method"] == "$/progress"]
    for n in notes:
        contract.check_progress(n["params"])
    assert values[0]["kind"] == "begin" and values[-1] == {"kind": "end", "message": "done"}
    pct = [v["percentage"] for v in values if v["kind"] == "report"]
    assert pct == sorted(set(pct)) and len(pct) >= 5 and pct[-1] <= 100


def test_shell_client_against_the_real_daemon(engine, workdir):
    import subprocess
    from helpers import SHELL_CLIENT

    def run(*args):
        return subprocess.run([SHELL_CLIENT, "--socket", engine.socket_path, *args], capture_output=True, text=True,
                              timeout=120)
    out = os.path.join(workdir, "flag.png")
    r = run("sample", "the flag of Japan", "-o", out, "--seed", "3", "--steps", "4")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [out] and png_size(open(out, "rb").read()) == (32, 32)
    assert "erudiff: started sample" in r.stderr and "%" in r.stderr
    r = run("match", "--pairs", json.dumps(PAIRS), "--steps", "2", "--batch-size", "2", "--no-dislocation",
            "--params", '{"anchors": {"perPair": 1, "steps": 2}}')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["steps"] == 2
    r = run("rl", "--prompts", '["a school zone road sign"]', "--group-size", "2", "--steps-per-round", "1", "--sampling-steps", "2")
    assert r.returncode == 0 and "rewardMean" in json.loads(r.stdout), r.stderr
    r = run("eval", "--set", "world:explicit", "--samples-per-item", "1", "--steps", "2",
            "--params", '{"explicitCount": 3}')
    assert r.returncode == 0 and json.loads(r.stdout)["explicitCaptions"]["images"] == 3, r.stderr
    r = run("encode", "a stop sign")
    assert json.loads(r.stdout)["tokens"] == [[101, 1037, 2644, 3696, 102]]
    r = run("models")
    assert json.loads(r.stdout)["models"][0]["name"] == "mini"
    r = run("eval", "--set", "world:nope")
    assert r.returncode == 1 and json.loads(r.stdout)["code"] == -32602
