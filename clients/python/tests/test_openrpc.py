"""protocol/openrpc.json: complete for DESIGN §7, self-consistent (every example validates against its
own schemas), and in step with what the daemon serves; the test methods are documented apart
(tests/test-methods.openrpc.json) and served only when a test suite asks for them."""

import pytest

DESIGN_METHODS = ["sample", "matchDistributions", "rlStep", "evaluate", "encode", "models/list", "models/load",
                  "models/unload", "adapters/save", "adapters/load", "adapters/reset", "status"]
LIFECYCLE = ["initialize", "shutdown", "exit", "$/cancelRequest"]


def test_document_shape(contract):
    doc = contract.doc
    assert doc["openrpc"].startswith("1.")
    assert doc["info"]["title"] == "erudiffd"
    names = [m["name"] for m in doc["methods"]]
    assert len(names) == len(set(names))
    for name in DESIGN_METHODS + LIFECYCLE:
        assert name in names, f"{name} missing"
    assert not [n for n in names if n.startswith("test/")], "test methods are not part of the public contract"
    for m in doc["methods"] + contract.test_doc["methods"]:
        assert {"name", "params", "result", "errors", "examples"} <= set(m), m["name"]
        assert m.get("paramStructure") == "by-name", m["name"]
        assert m["examples"], f"{m['name']} has no example"
        for p in m["params"]:
            assert {"name", "schema", "description"} <= set(p), (m["name"], p)
        for e in m["errors"]:
            ref = e["$ref"].split("/")[-1]
            assert ref in doc["components"]["errors"], (m["name"], ref)


def test_every_method_takes_model_where_design_says(contract):
    for name in ["sample", "matchDistributions", "rlStep", "evaluate", "encode", "adapters/save", "adapters/load",
                 "adapters/reset"]:
        params = {p["name"]: p for p in contract.methods[name]["params"]}
        assert params["model"]["schema"] == {"$ref": "#/components/schemas/Model"}
    assert contract.doc["components"]["schemas"]["Model"]["default"] == "mini"


@pytest.mark.parametrize("name,defaults", [
    ("sample", {"count": 1, "steps": 20, "guidance": 4.0, "sampler": "ode", "adapter": True}),
    ("rlStep", {"rounds": 1, "reward": "world"}),
])
def test_design_defaults(contract, name, defaults):
    params = {p["name"]: p["schema"] for p in contract.methods[name]["params"]}
    for k, v in defaults.items():
        assert params[k].get("default") == v, (name, k)


def test_examples_validate_against_their_schemas(contract):
    for m in contract.methods.values():
        for ex in m["examples"]:
            contract.check_params(m["name"], {p["name"]: p["value"] for p in ex["params"]})
            if not m.get("x-notification"):
                contract.check_result(m["name"], ex["result"]["value"])


def test_error_codes_are_the_daemons(contract):
    codes = {e["code"] for e in contract.doc["components"]["errors"].values()}
    assert codes == {-32700, -32600, -32601, -32602, -32603, -32800, -32001, -32002, -32003, -32004, -32005, -32006}


def test_served_methods_are_documented(start, contract):
    public = start(test_methods=False)
    with public.connect() as c:
        served = c.call("initialize", {})["result"]["capabilities"]["methods"]
    assert set(served) <= set(contract.public_methods), set(served) - set(contract.public_methods)
    public.stop()
    with start().connect() as c:
        served = c.call("initialize", {})["result"]["capabilities"]["methods"]
    assert {"test/sleep", "test/echo"} <= set(served) <= set(contract.methods), set(served) - set(contract.methods)


def test_test_methods_need_the_flag(start):
    with start(test_methods=False).connect() as c:
        for method, params in [("test/sleep", {"units": 1, "unitMs": 1}), ("test/echo", {"value": 1})]:
            assert c.call(method, params)["error"]["code"] == -32601, method
