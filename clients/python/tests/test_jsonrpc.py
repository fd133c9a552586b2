"""JSON-RPC 2.0 over the socket: batches, notifications, every standard and server error, malformed
JSON, wrong types, unknown methods, and replies checked against protocol/openrpc.json."""

import json

import pytest

from helpers import notification, request


def test_every_error_code_is_documented_and_produced(start, contract):
    """Each error the daemon can send comes from the running daemon and matches the document."""
    d = start("--max-queue", "1", "--max-message-bytes", "2048")
    seen = {}
    with d.connect() as c:
        c.send_raw(b"{nope\n")
        seen[-32700] = c.recv()
        c.send_raw(b'{"jsonrpc":"1.0","id":2,"method":"status"}\n')
        seen[-32600] = c.recv()
        seen[-32601] = c.call("no/such/method", request_id=3)
        seen[-32602] = c.call("test/sleep", {"units": "ten"}, request_id=4)
        seen[-32603] = c.call("test/sleep", {"units": 3, "unitMs": 1, "failAt": 2}, request_id=5)
        c.send(request("test/sleep", {"units": 1000, "unitMs": 10}, 6))
        seen[-32001] = c.call("test/sleep", {"units": 1}, request_id=7)
        c.send(notification("$/cancelRequest", {"id": 6}))
        seen[-32800] = c.recv_reply(6)
        c.send_raw(b'{"x":"' + b"a" * 3000 + b'"}\n')
        seen[-32004] = c.recv()
    with d.connect() as c:
        c.send(request("test/sleep", {"units": 100000, "unitMs": 5}, 8))
        c2 = d.connect()
        assert c2.call("shutdown", request_id=9)["result"] is None
        seen[-32003] = c.recv_reply(8)
        seen["-32600 after shutdown"] = c2.call("status", request_id=10)
        c2.close()
    for code, reply in seen.items():
        contract.check_error(reply["error"])
        want = code if isinstance(code, int) else -32600
        assert reply["error"]["code"] == want, (code, reply)
    assert seen[-32700]["id"] is None
    assert "units" in seen[-32602]["error"]["message"]


@pytest.mark.parametrize("framing", ["line", "lsp"])
def test_batch_replies_in_order_without_notifications(daemon, contract, framing):
    with daemon.connect(framing) as c:
        c.send([request("status", None, 1), notification("status"), request("nope", None, "two"), 5,
                request("test/echo", {"value": [1, {"a": None}]}, 3), request("test/sleep", {"units": 2, "unitMs": 5}, 4)])
        replies = c.recv()
        assert isinstance(replies, list)
        assert [r["id"] for r in replies] == [1, "two", None, 3, 4]
        contract.check_reply("status", replies[0])
        assert replies[1]["error"]["code"] == -32601
        assert replies[2]["error"]["code"] == -32600
        assert replies[3]["result"] == [1, {"a": None}]
        contract.check_reply("test/sleep", replies[4])


def test_batch_of_notifications_gets_no_reply(daemon):
    with daemon.connect() as c:
        c.send([notification("status"), notification("initialized", {}), notification("test/echo", {"value": 1})])
        c.send(request("status", None, 42))
        assert c.recv()["id"] == 42, "the first thing back is the reply to the later request"


def test_empty_batch_and_batch_of_garbage(daemon):
    with daemon.connect() as c:
        c.send([])
        r = c.recv()
        assert r["error"]["code"] == -32600 and r["id"] is None
        c.send([1, "x", None])
        rs = c.recv()
        assert [r["error"]["code"] for r in rs] == [-32600] * 3
        assert all(r["id"] is None for r in rs)


def test_notifications_get_no_reply(daemon):
    with daemon.connect("lsp") as c:
        for m in ["status", "no/such", "$/setTrace", "initialized", "test/echo"]:
            c.send(notification(m, {}))
        c.send(notification("test/sleep", {"units": "bad"}))   # invalid params: still silent
        assert c.nothing_within(0.3)
        assert c.call("status", request_id=1)["id"] == 1


@pytest.mark.parametrize("raw", [
    b"{", b"}", b"[", b"]]", b"nul", b"{'single': 1}", b'{"jsonrpc":"2.0","id":1,"method":"status",}',
    b'\xff\xfe{"a":1}', b'{"a":"\\ud800"}', b"1e99999", b"123456789012345678901234567890",
    b'"unterminated', b"[" * 5000 + b"]" * 5000, b'{"a":1}{"b":2}',
])
def test_malformed_json_is_a_parse_error(daemon, contract, raw):
    with daemon.connect() as c:
        c.send_raw(raw + b"\n")
        r = c.recv()
        contract.check_error(r["error"])
        assert r["error"]["code"] in (-32700, -32600), r
        if r["error"]["code"] == -32700:
            assert r["id"] is None
        assert c.call("status", request_id=2)["id"] == 2


@pytest.mark.parametrize("message,code", [
    (1, -32600), ("status", -32600), (None, -32600), (True, -32600),
    ({"jsonrpc": "2.0", "id": 1}, -32600),
    ({"jsonrpc": 2.0, "id": 1, "method": "status"}, -32600),
    ({"id": 1, "method": "status"}, -32600),
    ({"jsonrpc": "2.0", "id": 1, "method": ["status"]}, -32600),
    ({"jsonrpc": "2.0", "id": 1, "method": "status", "params": 3}, -32600),
    ({"jsonrpc": "2.0", "id": {"x": 1}, "method": "status"}, -32600),
    ({"jsonrpc": "2.0", "id": 1, "method": "status", "params": [1]}, -32602),
    ({"jsonrpc": "2.0", "id": 1, "method": "status", "params": {"x": 1}}, -32602),
    ({"jsonrpc": "2.0", "id": 1, "method": "test/sleep", "params": {"units": 1.5}}, -32602),
    ({"jsonrpc": "2.0", "id": 1, "method": "test/sleep", "params": {"units": -1}}, -32602),
    ({"jsonrpc": "2.0", "id": 1, "method": "test/sleep", "params": {"unitMs": "5"}}, -32602),
    ({"jsonrpc": "2.0", "id": 1, "method": "test/sleep", "params": {"spin": 1}}, -32602),
    ({"jsonrpc": "2.0", "id": 1, "method": "test/sleep", "params": {"workDoneToken": {"a": 1}}}, -32602),
    ({"jsonrpc": "2.0", "id": 1, "method": "$/cancelRequest", "params": {}}, -32602),
    ({"jsonrpc": "2.0", "id": 1, "method": "sample", "params": {"prompt": "x"}}, -32002),   # no model loaded
    ({"jsonrpc": "2.0", "id": 1, "method": "sample/x", "params": {"prompt": "x"}}, -32601),
    ({"jsonrpc": "2.0", "id": 1, "method": "", "params": {}}, -32601),
    ({"jsonrpc": "2.0", "id": 1, "method": "STATUS"}, -32601),
])
def test_wrong_types_and_unknown_methods(daemon, contract, message, code):
    with daemon.connect() as c:
        c.send(json.dumps(message).encode())
        r = c.recv()
        contract.check_error(r["error"])
        assert r["error"]["code"] == code, r


def test_invalid_params_name_the_parameter_and_expectation(daemon):
    with daemon.connect() as c:
        m = c.call("test/sleep", {"unitMs": "fast"})["error"]["message"]
        assert '"unitMs" must be an integer in 0...60000, got "fast"' in m
        m = c.call("test/sleep", {"units": 3, "color": "red"})["error"]["message"]
        assert 'unknown parameter "color"' in m and "units" in m


@pytest.mark.parametrize("rid", [0, -5, 2**53, "abc", "", "ünï", 1.5, None])
def test_ids_are_echoed(daemon, rid):
    with daemon.connect() as c:
        c.send(request("status", None, rid))
        r = c.recv()
        assert r["id"] == rid and "result" in r


def test_initialize_shutdown_exit(start, contract):
    d = start()
    with d.connect("lsp") as c:
        r = c.call("initialize", {"processId": 1, "clientInfo": {"name": "pytest"}, "capabilities": {}, "rootUri": None})
        contract.check_reply("initialize", r)
        assert "status" in r["result"]["capabilities"]["methods"]
        c.send(notification("initialized", {}))
        r = c.call("shutdown", request_id=2)
        contract.check_reply("shutdown", r)
        assert r["result"] is None
        assert c.call("status", request_id=3)["error"]["code"] == -32600
        c.send(notification("exit"))
        assert c.closed_by_peer()
    assert d.proc.wait(10) == 0
    d.expected_exit = True


def test_exit_without_shutdown_exits_1(start):
    d = start()
    with d.connect() as c:
        c.send(notification("exit"))
        assert c.closed_by_peer()
    assert d.proc.wait(10) == 1
    d.expected_exit = True


def test_replies_validate_against_openrpc(daemon, contract):
    with daemon.connect() as c:
        contract.check_reply("initialize", c.call("initialize", {}, 1))
        contract.check_reply("status", c.call("status", None, 2))
        notes = []
        r = c.call("test/sleep", {"units": 4, "unitMs": 5, "workDoneToken": "v"}, 3, notifications=notes)
        contract.check_reply("test/sleep", r)
        for n in notes:
            contract.check_progress(n["params"])
        contract.check_reply("test/echo", c.call("test/echo", {"value": {"k": [1.5, None]}}, 4))
        c.send(request("test/sleep", {"units": 100, "unitMs": 20}, 5))
        st = c.call("status", None, 6)
        contract.check_reply("status", st)
        assert st["result"]["jobs"][0]["method"] == "test/sleep"
