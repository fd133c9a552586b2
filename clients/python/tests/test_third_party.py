"""A third-party JSON-RPC implementation with LSP framing drives the daemon: python-lsp-jsonrpc
(the JSON-RPC layer of python-lsp-server), its stream reader/writer and its Endpoint."""

import itertools
import threading

import pytest

# Installed by scripts/setup (pip install --no-deps python-lsp-jsonrpc ujson); missing means a failed run.
from pylsp_jsonrpc.endpoint import Endpoint
from pylsp_jsonrpc.exceptions import JsonRpcException
from pylsp_jsonrpc.streams import JsonRpcStreamReader, JsonRpcStreamWriter


class LspSession:
    """An Endpoint over the daemon's socket; incoming $/progress notifications are collected."""

    def __init__(self, daemon):
        self.conn = daemon.connect("lsp")
        self.rfile = self.conn.sock.makefile("rb")
        self.wfile = self.conn.sock.makefile("wb")
        self.progress = []
        self.ids = itertools.count(1)
        writer = JsonRpcStreamWriter(self.wfile)
        self.endpoint = Endpoint({"$/progress": self.progress.append}, writer.write, id_generator=lambda: next(self.ids))
        self.reader = JsonRpcStreamReader(self.rfile)
        self.thread = threading.Thread(target=self.reader.listen, args=(self.endpoint.consume,), daemon=True)
        self.thread.start()

    def close(self):
        self.endpoint.shutdown()
        self.conn.sock.close()


@pytest.fixture
def lsp(daemon):
    s = LspSession(daemon)
    yield s
    s.close()


def test_lifecycle_and_status_through_pylsp_jsonrpc(lsp, contract):
    init = lsp.endpoint.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}}).result(10)
    contract.check_result("initialize", init)
    assert init["serverInfo"]["name"] == "erudiffd"
    lsp.endpoint.notify("initialized", {})
    status = lsp.endpoint.request("status").result(10)
    contract.check_result("status", status)


def test_progress_and_result_through_pylsp_jsonrpc(lsp, contract):
    result = lsp.endpoint.request("test/sleep", {"units": 10, "unitMs": 5, "workDoneToken": "lsp-1"}).result(10)
    contract.check_result("test/sleep", result)
    assert result["units"] == 10
    kinds = [p["value"]["kind"] for p in lsp.progress]
    assert kinds[0] == "begin" and kinds[-1] == "end" and kinds.count("report") == 9
    for p in lsp.progress:
        contract.check_progress(p)


def test_errors_arrive_as_jsonrpc_exceptions(lsp):
    with pytest.raises(JsonRpcException) as e:
        lsp.endpoint.request("no/such/method").result(10)
    assert e.value.code == -32601
    with pytest.raises(JsonRpcException) as e:
        lsp.endpoint.request("test/sleep", {"units": "x"}).result(10)
    assert e.value.code == -32602


def test_cancel_request_through_pylsp_jsonrpc(lsp):
    future = lsp.endpoint.request("test/sleep", {"units": 100000, "unitMs": 5})
    request_id = next(iter(lsp.endpoint._server_request_futures))   # the id it chose (our generator)
    lsp.endpoint.notify("$/cancelRequest", {"id": request_id})
    with pytest.raises(JsonRpcException) as e:
        future.result(10)
    assert e.value.code == -32800


def test_concurrent_requests_through_pylsp_jsonrpc(lsp):
    futures = [lsp.endpoint.request("test/echo", {"value": i}) for i in range(200)]
    assert [f.result(10) for f in futures] == list(range(200))
