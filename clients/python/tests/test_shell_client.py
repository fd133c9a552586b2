"""clients/erudiff (bash, socat + jq): commands, progress on stderr, exit codes, Ctrl-C cancellation,
and the engine commands' requests checked against the contract through the stand-in server."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from fake_daemon import FakeDaemon
from helpers import SHELL_CLIENT


def run(*args, socket_path=None, env=None, timeout=60):
    e = dict(os.environ if env is None else env)
    cmd = [SHELL_CLIENT] + (["--socket", socket_path] if socket_path else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e)


def test_status(daemon, contract):
    r = run("status", socket_path=daemon.socket_path)
    assert r.returncode == 0, r.stderr
    contract.check_result("status", json.loads(r.stdout))


def test_socket_from_environment(daemon):
    r = run("status", env=dict(os.environ, ERUDIFF_SOCKET=daemon.socket_path))
    assert r.returncode == 0 and json.loads(r.stdout)["queue"] == 0


def test_call_prints_result_and_progress_on_stderr(daemon):
    r = run("call", "test/sleep", '{"units": 4, "unitMs": 20}', socket_path=daemon.socket_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["units"] == 4
    lines = r.stderr.splitlines()
    assert lines[0].startswith("erudiff: started test/sleep")
    assert [l.split()[1] for l in lines[1:4]] == ["25%", "50%", "75%"]
    assert lines[-1] == "erudiff: finished done"
    q = run("-q", "call", "test/sleep", '{"units": 3, "unitMs": 1}', socket_path=daemon.socket_path)
    assert q.returncode == 0 and q.stderr == ""


def test_rpc_error_exits_1_with_the_error_object(daemon):
    r = run("call", "test/sleep", '{"units": "many"}', socket_path=daemon.socket_path)
    assert r.returncode == 1
    err = json.loads(r.stdout)
    assert err["code"] == -32602 and '"units"' in err["message"]
    assert "test/sleep failed" in r.stderr and "(-32602)" in r.stderr
    assert run("call", "no/such", socket_path=daemon.socket_path).returncode == 1


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["call"], ["call", "status", "not json"], ["call", "status", "[1]"],
                                  ["status", "extra"], ["sample"], ["sample", "p", "--steps", "many"],
                                  ["match", "--bogus", "1"], ["--nope", "status"]])
def test_usage_errors_exit_2(daemon, args):
    r = run(*args, socket_path=daemon.socket_path)
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    assert r.stderr


def test_json_arguments_from_a_file_or_stdin_beyond_the_command_line_limit(daemon, workdir):
    # Linux caps one command-line argument at 128 KiB: params of a few thousand prompts must come from
    # a file (@FILE) or standard input (@-), and the client must not pass them on to a command line of
    # its own (jq's) either. test/echo answers its "value" param.
    params = {"value": {"prompts": [f"a small red circle on the left of a white background, number {i}"
                                    for i in range(4000)]}}
    text = json.dumps(params)
    assert len(text) > 2 * 128 * 1024
    path = os.path.join(workdir, "params.json")
    with open(path, "w") as f:
        f.write(text)
    r = run("-q", "call", "test/echo", "@" + path, socket_path=daemon.socket_path)
    assert r.returncode == 0, r.stderr[-500:]
    assert json.loads(r.stdout) == params["value"]
    r = subprocess.run([SHELL_CLIENT, "--socket", daemon.socket_path, "-q", "call", "test/echo", "@-"],
                       input=text, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-500:]
    assert json.loads(r.stdout) == params["value"]


@pytest.mark.parametrize("args", [["call", "test/echo", "@/no/such/file.json"], ["call", "test/echo", "{} {}"],
                                  ["call", "test/echo", "@-"], ["match", "--pairs", "@/no/such/file.json"],
                                  ["match", "--pairs", "[] []"], ["eval", "--params", "@-"]])
def test_unreadable_or_several_json_values_are_usage_errors(daemon, args):
    # Standard input is empty here: "@-" reads no JSON value at all.
    r = subprocess.run([SHELL_CLIENT, "--socket", daemon.socket_path] + args, input="", capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    assert r.stderr.startswith("erudiff: ")


def test_help(daemon):
    r = run("help")
    assert r.returncode == 0 and "exit codes" in r.stdout


def test_cannot_connect_exits_3(workdir):
    # Without a daemon the client would start one: here it is told not to (test_autostart covers that).
    env = dict(os.environ, ERUDIFF_NO_AUTOSTART="1")
    assert run("status", socket_path=os.path.join(workdir, "absent.sock"), env=env).returncode == 3
    stale = os.path.join(workdir, "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale)
    s.close()
    r = run("status", socket_path=stale, env=env)
    assert r.returncode == 3, r.stderr
    assert "cannot connect" in r.stderr


def test_daemon_dying_mid_call_exits_4(start):
    d = start()
    p = subprocess.Popen([SHELL_CLIENT, "--socket", d.socket_path, "call", "test/sleep", '{"units": 100000, "unitMs": 5}'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    d.proc.kill()
    d.proc.wait()
    d.expected_exit = True
    assert p.wait(20) == 4


def test_ctrl_c_cancels_the_request(daemon):
    # A terminal's foreground job gets SIGINT with its default disposition. The test runner may have
    # inherited it ignored (anything started with `&` from a non-interactive shell, or under nohup), and a
    # shell cannot trap a signal that was ignored when it started — so give the client the default.
    p = subprocess.Popen([SHELL_CLIENT, "--socket", daemon.socket_path, "call", "test/sleep",
                          '{"units": 100000, "unitMs": 5}'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 10
    with daemon.connect() as c:
        while not c.call("status")["result"]["jobs"] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        os.killpg(p.pid, signal.SIGINT)            # like a terminal: the whole process group
        try:
            out, err = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:          # say what the client and the daemon were doing
            jobs = c.call("status")["result"]["jobs"]
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            pytest.fail(f"client still running 20 s after Ctrl-C; daemon jobs {jobs}; stderr {err[-2000:]!r}")
        assert p.returncode == 130, (out, err)
        assert json.loads(out)["code"] == -32800
        assert c.call("status")["result"]["jobs"] == []
    assert "cancelling" in err


def test_stop_shuts_the_daemon_down(start):
    d = start()
    r = run("stop", socket_path=d.socket_path)
    assert r.returncode == 0, r.stderr
    assert d.proc.wait(10) == 0
    d.expected_exit = True
    assert not os.path.exists(d.socket_path)


# -- engine commands against the contract ---------------------------------------------------------

@pytest.fixture
def fake(contract, workdir):
    f = FakeDaemon(contract, os.path.join(workdir, "fake.sock"))
    yield f
    f.close()
    assert not f.errors, f.errors


def test_sample_writes_png_files(fake, workdir):
    out = os.path.join(workdir, "flag.png")
    r = run("sample", "the flag of Japan", "-o", out, "--seed", "7", "--steps", "8", "--guidance", "3.5",
            "--sampler", "sde", "--no-adapter", "--model", "mini", socket_path=fake.path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [out]
    assert open(out, "rb").read() == fake.png
    assert "erudiff: started sample" in r.stderr
    p = [q for q in fake.requests if q.get("method") == "sample"][0]["params"]
    assert {k: v for k, v in p.items() if k != "workDoneToken"} == {
        "prompt": "the flag of Japan", "seed": 7, "steps": 8, "guidance": 3.5, "sampler": "sde", "adapter": False,
        "model": "mini"}
    r = run("sample", "a school zone road sign", "-o", os.path.join(workdir, "s.png"), "-n", "3", socket_path=fake.path)
    assert r.stdout.split() == [os.path.join(workdir, f"s-{i}.png") for i in (1, 2, 3)]
    d = os.path.join(workdir, "out")
    r = run("sample", "a school zone road sign", "-d", d, socket_path=fake.path)
    assert r.returncode == 0 and r.stdout.split()[0].startswith(d)


def test_match_rl_eval_build_contract_params(fake):
    cases = [
        ["match", "--pairs", '[{"implicit":"a school zone road sign","explicit":"a yellow pentagon on a white background"}]',
         "--steps", "10", "--batch-size", "2", "--lr", "0.001", "--preserve-weight", "0.5", "--seed", "1",
         "--params", '{"anchors":{"perPair":2}}'],
        ["match", "--set", "world:train"],
        ["rl", "--prompts", '["a school zone road sign"]', "--group-size", "4", "--rounds", "2", "--beta", "0.5", "--lr", "1e-4",
         "--kl-weight", "0.1"],
        ["rl", "--samples", '[{"id":"s-1","reward":0.25}]'],
        ["eval", "--set", "world:test-concept", "--samples-per-item", "2", "--seed", "3"],
    ]
    for args in cases:
        r = run(*args, socket_path=fake.path)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        json.loads(r.stdout)
    methods = [q["method"] for q in fake.requests if "id" in q]
    assert methods == ["matchDistributions", "matchDistributions", "rlStep", "rlStep", "evaluate"]


def test_grid_replaces_a_foreign_file_only_when_told(fake, workdir):
    out = os.path.join(workdir, "sheet.png")
    rows = '[[{"id": "s-1"}]]'
    for extra in ([], ["--overwrite"]):
        r = run("grid", "-o", out, "--rows", rows, *extra, socket_path=fake.path)
        assert r.returncode == 0, r.stderr
    sent = [q["params"] for q in fake.requests if q.get("method") == "images/grid"]
    assert [p.get("overwrite") for p in sent] == [None, True]
    assert all(p["path"] == out for p in sent)


def test_engine_commands_take_json_from_files(fake, workdir):
    pairs = [{"implicit": f"the flag of country {i}", "explicit": "a red circle on a white background"}
             for i in range(3000)]
    pairs_path = os.path.join(workdir, "pairs.json")
    with open(pairs_path, "w") as f:
        json.dump(pairs, f)
    extra_path = os.path.join(workdir, "extra.json")
    with open(extra_path, "w") as f:
        json.dump({"anchors": {"perPair": 2}}, f)
    r = run("-q", "match", "--pairs", "@" + pairs_path, "--steps", "3", "--params", "@" + extra_path,
            socket_path=fake.path)
    assert r.returncode == 0, (r.stdout, r.stderr[-500:])
    p = [q for q in fake.requests if q.get("method") == "matchDistributions"][-1]["params"]
    assert p == {"pairs": pairs, "steps": 3, "anchors": {"perPair": 2}}
