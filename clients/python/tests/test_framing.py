"""Both framings over a real socket: detection, replies in the caller's framing, frames split across
writes, several per write, size limits, garbage headers, half frames."""

import json
import time

import pytest

from helpers import Conn, request


@pytest.mark.parametrize("framing", ["line", "lsp"])
def test_status_in_each_framing(daemon, contract, framing):
    with daemon.connect(framing) as c:
        r = c.call("status")
        contract.check_reply("status", r)
        assert r["id"] == 1


def test_lsp_reply_is_framed_with_exact_content_length(daemon):
    with daemon.connect("lsp") as c:
        c.send(request("test/echo", {"value": "héllo ✓"}, 5))
        data = b""
        while b"\r\n\r\n" not in data:
            data += c.sock.recv(4096)
        header, body = data.split(b"\r\n\r\n", 1)
        assert header.startswith(b"Content-Length: ")
        n = int(header.split(b":")[1])
        while len(body) < n:
            body += c.sock.recv(4096)
        assert len(body) == n
        assert json.loads(body)["result"] == "héllo ✓"


def test_lsp_with_content_type_header_and_lowercase_name(daemon):
    with daemon.connect("lsp") as c:
        body = json.dumps(request("status", None, 3)).encode()
        c.send_raw(b"content-length: %d\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n" % len(body) + body)
        assert c.recv_reply(3)["result"]["queue"] == 0


@pytest.mark.parametrize("framing", ["line", "lsp"])
def test_many_messages_in_one_write(daemon, framing):
    with daemon.connect(framing) as c:
        c.send_raw(b"".join(Conn.encode(request("test/echo", {"value": i}, i), framing) for i in range(1, 201)))
        got = [c.recv() for _ in range(200)]
        assert [m["id"] for m in got] == list(range(1, 201))
        assert all(m["result"] == m["id"] for m in got)


@pytest.mark.parametrize("framing", ["line", "lsp"])
def test_frames_split_byte_by_byte(daemon, framing):
    data = b"".join(Conn.encode(request("test/echo", {"value": "x" * 50}, i), framing) for i in range(1, 4))
    with daemon.connect(framing) as c:
        for i in range(len(data)):
            c.send_raw(data[i:i + 1])
            if i % 40 == 0:
                time.sleep(0.001)
        assert [c.recv()["id"] for _ in range(3)] == [1, 2, 3]


def test_crlf_and_blank_lines_in_line_framing(daemon):
    with daemon.connect("line") as c:
        c.send_raw(b"\r\n\n" + json.dumps(request("status", None, 8)).encode() + b"\r\n\n")
        assert c.recv_reply(8)["result"]["jobs"] == []


def test_oversized_content_length_gets_error_then_close(start, contract):
    d = start("--max-message-bytes", "4096")
    with d.connect("lsp") as c:
        c.send_raw(b"Content-Length: 4097\r\n\r\n")
        m = c.recv()
        contract.check_error(m["error"])
        assert m["error"]["code"] == -32004 and m["id"] is None
        assert c.closed_by_peer()
    with d.connect("lsp") as c:
        c.send_raw(b"Content-Length: 99999999999999999999999999999\r\n\r\n")
        assert c.recv()["error"]["code"] == -32004
        assert c.closed_by_peer()
    with d.connect("line") as c:  # others are still served
        assert c.call("status")["result"]["queue"] == 0
    assert "exceeds --max-message-bytes" in d.log()


def test_oversized_line_gets_error_then_close(start):
    d = start("--max-message-bytes", "4096")
    with d.connect("line") as c:
        c.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"test/echo","params":{"value":"' + b"y" * 5000)
        m = c.recv()
        assert m["error"]["code"] == -32004
        assert c.closed_by_peer()
    with d.connect("line") as c:   # just under the limit is fine
        body = json.dumps(request("test/echo", {"value": "z" * 3900})).encode()
        assert len(body) <= 4096
        c.send_raw(body + b"\n")
        assert c.recv()["result"] == "z" * 3900


@pytest.mark.parametrize("garbage", [
    b"Content-Length 12\r\n\r\n{}",
    b"Content-Length: twelve\r\n\r\n",
    b"Content-Type: x\r\n\r\n{}",
    b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
    b"C" + b"x" * 9000,
])
def test_garbage_headers_close_the_connection(daemon, garbage):
    with daemon.connect("lsp") as c:
        c.send_raw(garbage)
        assert c.closed_by_peer()
    with daemon.connect("lsp") as c:
        assert c.call("status")["result"]["queue"] == 0
    assert "unreadable LSP header" in daemon.log()


@pytest.mark.parametrize("framing", ["line", "lsp"])
def test_half_frame_then_disconnect(daemon, framing):
    full = Conn.encode(request("status"), framing)
    for _ in range(5):
        c = daemon.connect(framing)
        c.send_raw(full[: len(full) // 2])
        c.close()
    time.sleep(0.2)
    with daemon.connect(framing) as c:
        assert c.call("status")["result"]["queue"] == 0
    assert "in the middle of a frame" in daemon.log()


def test_half_frame_then_half_close_gets_nothing(daemon):
    import socket as s
    with daemon.connect("lsp") as c:
        c.send_raw(b"Content-Length: 100\r\n\r\n{\"jsonrpc\"")
        c.sock.shutdown(s.SHUT_WR)
        assert c.closed_by_peer()


def test_framing_is_per_connection(daemon):
    with daemon.connect("lsp") as a, daemon.connect("line") as b:
        a.send(request("status", None, 1))
        b.send(request("status", None, 2))
        assert a.recv()["id"] == 1
        assert b.recv()["id"] == 2
