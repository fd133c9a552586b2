"""A stand-in for the engine methods that do not exist yet: a tiny server on a Unix socket that checks
each request's params against protocol/openrpc.json and answers with the method's first documented
example (with a real PNG for sample). It lets the clients' request building be tested against the
contract itself; it is never used to test erudiffd."""

import base64
import json
import os
import socket
import struct
import threading
import zlib


def tiny_png(width=2, height=2, rgb=(200, 30, 30)):
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class FakeDaemon:
    def __init__(self, contract, path):
        self.contract = contract
        self.path = path
        self.requests = []
        self.errors = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.png = tiny_png()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self):
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn):
        f = conn.makefile("rb")
        for line in f:
            m = json.loads(line)
            if "id" not in m:
                self.requests.append(m)
                continue
            self.requests.append(m)
            method, params = m["method"], m.get("params", {})
            reply = {"jsonrpc": "2.0", "id": m["id"]}
            try:
                self.contract.check_params(method, params)
                token = params.get("workDoneToken")
                if token is not None:
                    for v in ({"kind": "begin", "title": method, "percentage": 0},
                              {"kind": "report", "percentage": 50, "message": "half"}, {"kind": "end"}):
                        conn.sendall(json.dumps({"jsonrpc": "2.0", "method": "$/progress",
                                                 "params": {"token": token, "value": v}}).encode() + b"\n")
                result = self.contract.methods[method]["examples"][0]["result"]["value"]
                if method == "sample":
                    result = {"images": [{"id": f"s-{i}", "prompt": params.get("prompt", "p"), "seed": i,
                                          "width": 2, "height": 2,
                                          **({"path": os.path.join(params["output"]["dir"], f"s-{i}.png")}
                                             if "output" in params else
                                             {"png": base64.b64encode(self.png).decode()})}
                                         for i in range(params.get("count", 1))], "elapsedMs": 3}
                    if "output" in params:
                        for im in result["images"]:
                            with open(im["path"], "wb") as out:
                                out.write(self.png)
                self.contract.check_result(method, result)
                reply["result"] = result
            except Exception as e:  # a contract violation by the client under test
                self.errors.append(f"{method}: {e}")
                reply["error"] = {"code": -32602, "message": f"Invalid params: {str(e)[:200]}"}
            conn.sendall(json.dumps(reply).encode() + b"\n")
        conn.close()
