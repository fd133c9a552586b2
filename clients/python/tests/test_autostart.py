"""A daemon nobody starts by hand (issue 34): the clients start erudiffd when none answers (one daemon
for clients that race, a stale socket replaced, off with ERUDIFF_NO_AUTOSTART), it leaves after its idle
time — never while a job runs, its adapters saved and restored by the next start — a model loaded with a
keepAlive is unloaded once unused, a socket handed over by a service manager is served, and
scripts/install gives an `erudiff` that works from any folder with nothing set. All against the real
binary over real sockets; the daemons the clients start are found by their command lines and stopped."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

import erudiff
import helpers
from helpers import SHELL_CLIENT, daemon_pids, wait_gone


def log_time(log, needle):
    """The time (seconds) of the first log line that holds ``needle``."""
    import datetime
    line = next(l for l in log.splitlines() if needle in l)
    stamp = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    return stamp.timestamp()


def shell(*args, env, cwd=None, timeout=120):
    return subprocess.run([SHELL_CLIENT] + list(args), capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def pid_of(status_reply):
    return status_reply["pid"]


# -- start on demand ------------------------------------------------------------------------------------


def test_python_client_starts_a_detached_daemon_when_none_answers(place, capsys):
    place.use_in_process()
    with erudiff.Client() as c:
        st = c.status()
    pid = pid_of(st)
    err = capsys.readouterr().err
    assert f"started erudiffd (pid {pid}) on {place.socket_path}" in err and place.log in err, err
    assert st["idleExit"] == 1800, "an auto-started daemon leaves after 30 minutes idle by default"
    assert daemon_pids(place.socket_path) == [pid]
    assert os.getsid(pid) == pid, "it runs in a session of its own"
    assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
    assert os.readlink(f"/proc/{pid}/cwd") == "/"
    log = place.log_text()
    assert "erudiff (Python" in log and "listening on " + place.socket_path in log, log
    # The next client shares it and says nothing.
    with erudiff.Client() as c:
        assert pid_of(c.status()) == pid
    assert "started" not in capsys.readouterr().err


def test_shell_client_starts_a_daemon_and_shares_it(place):
    env = place.env(ERUDIFF_IDLE_EXIT="45m")
    r = shell("status", env=env)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert f"started erudiffd (pid {st['pid']})" in r.stderr and "exits after 45m idle" in r.stderr, r.stderr
    assert st["idleExit"] == 2700
    assert os.getsid(st["pid"]) == st["pid"]
    r2 = shell("status", env=env)
    assert r2.returncode == 0 and json.loads(r2.stdout)["pid"] == st["pid"] and "started" not in r2.stderr
    assert daemon_pids(place.socket_path) == [st["pid"]]
    assert "erudiff (shell" in place.log_text()


def test_daemon_start_prints_the_socket_and_daemon_stop_waits_for_the_exit(place):
    # `erudiff daemon start` is what editors call to get a daemon: exit 0 once one answers, the socket
    # on stdout; it starts one even when ERUDIFF_NO_AUTOSTART is set (it was asked to).
    env = place.env(ERUDIFF_NO_AUTOSTART="1")
    r = shell("daemon", "start", env=env)
    assert r.returncode == 0 and r.stdout == place.socket_path + "\n", r.stderr
    [pid] = daemon_pids(place.socket_path)
    r = shell("daemon", "start", env=env)
    assert r.returncode == 0 and r.stdout == place.socket_path + "\n" and "started" not in r.stderr
    assert daemon_pids(place.socket_path) == [pid]
    r = shell("daemon", "stop", env=env)
    assert r.returncode == 0 and f"(pid {pid}) stopped" in r.stderr, r.stderr
    assert daemon_pids(place.socket_path) == [] and not os.path.exists(place.socket_path)
    r = shell("daemon", "stop", env=env)
    assert r.returncode == 0 and "no daemon answers" in r.stderr
    assert shell("daemon", "restart", env=env).returncode == 2


def test_a_relative_socket_path_is_the_callers(place, workdir, monkeypatch, capsys):
    # The daemon runs in /: the path it is given must be the one the caller meant.
    r = shell("--socket", "run/rel.sock", "daemon", "start", env=place.env(), cwd=workdir)
    assert r.returncode == 0 and r.stdout == os.path.join(workdir, "run", "rel.sock") + "\n", r.stderr
    place.use_in_process()
    monkeypatch.chdir(workdir)
    with erudiff.Client("run/rel2.sock") as c:
        assert daemon_pids(os.path.join(workdir, "run", "rel2.sock")) == [pid_of(c.status())]


def test_racing_clients_start_exactly_one_daemon(place, mini_model):
    # Six clients (three shell, three Python) at once, with nothing running: the daemon takes about a
    # second to load its model, so every one of them finds no daemon; the start lock lets one start it.
    env = place.env(ERUDIFFD_ARGS=f"--model mini={mini_model}")
    cmds = []
    for i in range(3):
        cmds.append([SHELL_CLIENT, "status"])
        cmds.append([sys.executable, "-m", "erudiff", "status"])
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for c in cmds]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    pids = {json.loads(out)["pid"] for out, _ in outs}
    assert len(pids) == 1, outs
    assert sum("started erudiffd" in err for _, err in outs) == 1, [err for _, err in outs]
    assert daemon_pids(place.socket_path) == list(pids)
    log = place.log_text()
    assert log.count(" starts: ") == 1 and log.count("listening on") == 1, log


def test_a_stale_socket_is_replaced_by_the_daemon_started(place):
    os.makedirs(os.path.dirname(place.socket_path))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(place.socket_path)                      # a socket file nobody listens on: a daemon that died
    s.close()
    r = shell("status", env=place.env())
    assert r.returncode == 0, r.stderr
    assert "started erudiffd" in r.stderr
    assert "replaced a stale socket file" in place.log_text()


def test_no_autostart_turns_it_off(place, capsys):
    env = place.env(ERUDIFF_NO_AUTOSTART="1")
    r = shell("status", env=env)
    assert r.returncode == 3 and "ERUDIFF_NO_AUTOSTART" in r.stderr, r.stderr
    r = shell("--no-autostart", "status", env=place.env())
    assert r.returncode == 3
    r = subprocess.run([sys.executable, "-m", "erudiff", "--no-autostart", "status"], capture_output=True,
                       text=True, env=place.env(), timeout=60)
    assert r.returncode == 3 and "ERUDIFF_NO_AUTOSTART" in r.stderr, r.stderr
    place.use_in_process(ERUDIFF_NO_AUTOSTART="1")
    with pytest.raises(erudiff.DaemonUnavailable) as e:
        erudiff.Client()
    assert "ERUDIFF_NO_AUTOSTART" in str(e.value)
    place.use_in_process()
    with pytest.raises(erudiff.DaemonUnavailable):
        erudiff.Client(autostart=False)
    assert daemon_pids(place.socket_path) == [] and not os.path.exists(place.log)


def test_a_daemon_that_cannot_start_is_reported_with_its_log(place):
    env = place.env(ERUDIFFD_ARGS="--frobnicate")
    r = shell("status", env=env)
    assert r.returncode == 3, r.stderr
    assert "exited with code 2" in r.stderr and place.log in r.stderr and "--frobnicate" in r.stderr, r.stderr
    place.use_in_process(ERUDIFFD_ARGS="--frobnicate")
    with pytest.raises(erudiff.DaemonUnavailable) as e:
        erudiff.Client()
    assert "exited with code 2" in str(e.value) and place.log in str(e.value) and "unknown option" in str(e.value)
    r = shell("status", env=place.env(ERUDIFFD=os.path.join(place.state, "no-such-erudiffd")))
    assert r.returncode == 3 and "not an executable" in r.stderr


def test_a_malformed_idle_exit_is_a_clear_error(place):
    r = shell("status", env=place.env(ERUDIFF_IDLE_EXIT="soon"))
    assert r.returncode == 3 and "--idle-exit needs a duration" in r.stderr and '"soon"' in r.stderr, r.stderr
    r = subprocess.run([helpers.daemon_binary(), "--idle-exit", "-5m"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--idle-exit needs a duration" in r.stderr


# -- idle exit ------------------------------------------------------------------------------------------


def test_idle_exit_leaves_once_no_client_is_connected(start):
    d = start("--idle-exit", "2s")
    d.expected_exit = True
    conn = d.connect()
    assert conn.call("status")["result"]["idleExit"] == 2
    time.sleep(3.5)                                  # connected, idle: stays
    assert d.alive(), d.log()
    closed = time.monotonic()
    conn.close()
    assert d.proc.wait(10) == 0, d.log()
    took = time.monotonic() - closed
    assert 1.9 <= took <= 6, took
    log = d.log()
    assert "with no client and no job (--idle-exit 2s): checkpointing and exiting" in log, log
    assert "checkpoint at shutdown done" in log
    assert not os.path.exists(d.socket_path), "the socket file goes with it"


def test_idle_exit_waits_for_a_running_job(start):
    # A job whose client went away still runs until its unit ends (spin does not look at the cancel
    # flag): the daemon leaves only after the job, plus its idle time.
    d = start("--idle-exit", "1s")
    d.expected_exit = True
    job = d.connect()
    job.send(helpers.request("test/sleep", {"units": 1, "unitMs": 4000, "spin": True}))
    with d.connect() as probe:
        deadline = time.monotonic() + 10
        while not [j for j in probe.call("status")["result"]["jobs"] if j["state"] == "running"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    job.close()
    closed = time.monotonic()
    time.sleep(2.5)
    assert d.alive(), "left while a job ran:\n" + d.log()
    assert d.proc.wait(15) == 0
    log = d.log()
    # The decision to leave comes a second after the job's unit ended (about 4 s after the client left),
    # not a second after the client left.
    gone, leaving = log_time(log, "cancelled 1 request(s)"), log_time(log, "checkpointing and exiting")
    assert leaving - gone >= 3.5, log


def test_a_client_holding_the_start_lock_puts_the_idle_exit_off(start):
    import fcntl
    d = start("--idle-exit", "1s")
    d.expected_exit = True
    fd = os.open(d.socket_path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)                  # a client looking whether a daemon answers
    try:
        time.sleep(2.5)
        assert d.alive(), d.log()
    finally:
        os.close(fd)
    assert d.proc.wait(10) == 0


def test_idle_exit_keeps_what_was_learned_and_the_next_start_restores_it(place, mini_model, capsys):
    # A client trains the adapter of an auto-started daemon, which then leaves after 2 s idle; the next
    # client starts a new one, which restores the adapter: same steps, same images for the same seed.
    place.use_in_process(ERUDIFF_IDLE_EXIT="2s", ERUDIFFD_ARGS=f"--model mini={mini_model} --threads 2")
    pair = {"implicit": "the flag of Japan", "explicit": "a red circle on a white background"}
    with erudiff.Client() as c:
        first = pid_of(c.status())
        r = c.match_distributions([pair], steps=3, anchors={"perPair": 1}, dislocation=False, timeout=300)
        assert r["steps"] == 3
        steps = c.status()["models"][0]["adapter"]["steps"]
        before = c.sample("the flag of Japan", seed=11, steps=8).images[0].png
    assert steps >= 3
    assert wait_gone(first, 20), "the daemon did not leave after its idle time"
    log = place.log_text()
    assert "(--idle-exit 2s): checkpointing and exiting" in log and "checkpoint at shutdown done" in log, log
    with erudiff.Client() as c:
        st = c.status()
        assert pid_of(st) != first
        adapter = st["models"][0]["adapter"]
        assert adapter["steps"] == steps and adapter["restoredFrom"].endswith("adapters/mini.safetensors"), adapter
        after = c.sample("the flag of Japan", seed=11, steps=8).images[0].png
    assert after == before, "the restored adapter draws what the saved one drew"
    assert capsys.readouterr().err.count("started erudiffd") == 2


# -- keep-alive -----------------------------------------------------------------------------------------


def test_keep_alive_unloads_a_model_once_unused(start, mini_model, contract):
    d = start("--threads", "2", model=mini_model)
    with d.connect(timeout=120) as c:
        r = c.call("models/load", {"name": "spare", "path": mini_model, "keepAlive": "2s"})
        contract.check_reply("models/load", r)
        assert r["result"]["keepAlive"] == 2
        # In use (a sample of several seconds): never unloaded meanwhile.
        c.send(helpers.request("sample", {"prompt": "the flag of Japan", "model": "spare", "count": 24,
                                          "steps": 30}, "s"))
        with d.connect() as probe:
            reply = None
            seen_running = False
            while reply is None:
                st = probe.call("status")["result"]
                assert "spare" in [m["name"] for m in st["models"]], "unloaded while a job used it"
                seen_running = seen_running or bool(st["jobs"])
                try:
                    reply = c.recv(0.2)
                except TimeoutError:
                    pass
        assert len(reply["result"]["images"]) == 24
        ended = time.monotonic()
        names = lambda: [m["name"] for m in c.call("status")["result"]["models"]]   # noqa: E731
        spare = [m for m in c.call("status")["result"]["models"] if m["name"] == "spare"][0]
        assert spare["keepAlive"] == 2
        contract.check_reply("status", c.call("status"))
        while "spare" in names():
            assert time.monotonic() - ended < 10, d.log()
            time.sleep(0.1)
        assert time.monotonic() - ended >= 1.5, "unloaded before its keep-alive passed"
        assert names() == ["mini"], "the default model stays"
    deadline = time.monotonic() + 5       # logged once its adapter is checkpointed, just after it left
    while "unloaded model spare: unused for 2s (keepAlive)" not in d.log():
        assert time.monotonic() < deadline, d.log()
        time.sleep(0.05)


@pytest.mark.parametrize("params,needle", [
    ({"name": "spare", "keepAlive": "soon"}, '"keepAlive" must be a duration'),
    ({"name": "spare", "keepAlive": 0}, '"keepAlive" must be a duration'),
    ({"name": "spare", "keepAlive": -3}, '"keepAlive" must be a duration'),
    ({"name": "spare", "keepAlive": True}, '"keepAlive" must be a duration'),
    ({"name": "mini", "keepAlive": "5m"}, "the default model"),
])
def test_keep_alive_bad_values_are_refused(daemon, workdir, params, needle):
    with daemon.connect() as c:
        r = c.call("models/load", dict(params, path=workdir))
    assert r["error"]["code"] == -32602 and needle in r["error"]["message"], r


# -- socket activation ----------------------------------------------------------------------------------


def activated(workdir, listener, *args, listen_pid="$$", listen_fds="1"):
    """erudiffd started as a service manager starts it: the listening socket as descriptor 3,
    LISTEN_FDS, and LISTEN_PID set to the daemon's own pid by the shell that execs it."""
    log = open(os.path.join(workdir, f"activated-{time.monotonic_ns()}.log"), "wb")
    env = dict(os.environ, LISTEN_FDS=listen_fds, XDG_RUNTIME_DIR=os.path.join(workdir, "xdg"))
    fd = listener.fileno()

    def as_descriptor_3():
        os.dup2(fd, 3)
        os.set_inheritable(3, True)

    cmd = ["sh", "-c", f'LISTEN_PID={listen_pid} exec "$0" "$@"', helpers.daemon_binary(), "--no-default-model",
           "--state-dir", os.path.join(workdir, "state"), "--enable-test-methods"] + list(args)
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=False,
                         preexec_fn=as_descriptor_3)
    p.log_path = log.name
    log.close()
    return p


def read_log(p):
    with open(p.log_path) as f:
        return f.read()


def test_socket_activation_serves_the_inherited_socket(workdir, contract):
    path = os.path.join(workdir, "activated.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    p = activated(workdir, listener, "--idle-exit", "1s")
    try:
        with helpers.Conn(path, timeout=30) as c:   # accepted by the daemon once it runs
            r = c.call("status")
            contract.check_reply("status", r)
            assert r["result"]["pid"] == p.pid
        assert p.wait(15) == 0, read_log(p)
        log = read_log(p)
        assert f"listening on {path} (socket activation)" in log, log
        assert not os.path.exists(os.path.join(workdir, "xdg", "erudiff", "erudiffd.sock")), "bound its own socket"
        assert os.path.exists(path), "the manager's socket file is not the daemon's to remove"
        # After the idle exit the manager still listens: a client's connection waits in the backlog,
        # and the next daemon it starts answers it.
        late = helpers.Conn(path, timeout=30)
        late.send(helpers.request("test/echo", {"value": "queued"}))
        p = activated(workdir, listener)
        assert late.recv_reply(1)["result"] == "queued"
        late.close()
    finally:
        if p.poll() is None:
            p.terminate()
            p.wait(20)
        listener.close()


def test_socket_activation_for_another_process_or_two_sockets(workdir):
    path = os.path.join(workdir, "activated.sock")
    own = os.path.join(workdir, "own.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)
    try:
        p = activated(workdir, listener, "--socket", own, listen_pid="1")     # meant for another process
        try:
            deadline = time.monotonic() + 20
            while not os.path.exists(own):
                assert p.poll() is None and time.monotonic() < deadline, read_log(p)
                time.sleep(0.02)
            with helpers.Conn(own) as c:
                assert c.call("status")["result"]["pid"] == p.pid
            assert "(socket activation)" not in read_log(p)
        finally:
            p.terminate()
            assert p.wait(20) == 0
        p = activated(workdir, listener, listen_fds="2")
        assert p.wait(20) == 2 and "this server serves exactly one" in read_log(p), read_log(p)
    finally:
        listener.close()


# -- params null ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["line", "lsp"])
def test_null_params_are_no_params_for_every_method_whose_params_are_optional(start, contract, framing):
    # Emacs's jsonrpc.el (eglot's transport) sends "params": null for requests without parameters.
    d = start()
    d.expected_exit = True
    optional = [m["name"] for m in contract.doc["methods"]
                if not any(p.get("required") for p in m["params"]) and m["name"] not in ("shutdown", "exit")]
    assert {"status", "initialize", "models/list", "sample", "adapters/save"} <= set(optional), optional
    with d.connect(framing) as c:
        for i, method in enumerate(optional, 1):
            c.send({"jsonrpc": "2.0", "id": i, "method": method, "params": None})
            r = c.recv_reply(i)
            contract.check_reply(method, r)
            # No model is loaded: the engine methods answer -32002, which they do only after reading
            # their params; nothing answers -32600 (invalid request) or -32602 (invalid params).
            assert "result" in r or r["error"]["code"] == -32002, (method, r)
        c.send({"jsonrpc": "2.0", "id": "s", "method": "shutdown", "params": None})
        assert c.recv_reply("s") == {"jsonrpc": "2.0", "id": "s", "result": None}
        c.send({"jsonrpc": "2.0", "method": "exit", "params": None})
    assert d.proc.wait(10) == 0


# -- install --------------------------------------------------------------------------------------------


def test_install_gives_an_erudiff_that_works_from_any_folder(place, workdir):
    prefix = os.path.join(workdir, "prefix")
    r = subprocess.run([os.path.join(helpers.REPO, "scripts", "install"), prefix], capture_output=True, text=True,
                       env=dict(os.environ, ERUDIFFD=helpers.daemon_binary()), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    for f in ("bin/erudiffd", "bin/erudiff", "share/erudiff/models/mini/config.json",
              "share/erudiff/minilm/model.safetensors", "share/erudiff/systemd/erudiffd.service"):
        assert os.path.exists(os.path.join(prefix, f)), f
    with open(os.path.join(prefix, "share/erudiff/systemd/erudiffd.service")) as f:
        assert f"ExecStart={prefix}/bin/erudiffd " in f.read()
    # A new login shell: HOME, a PATH of the system's folders and the runtime folder, nothing of erudiff.
    home = os.path.join(workdir, "home")
    elsewhere = os.path.join(workdir, "elsewhere")
    os.makedirs(home)
    os.makedirs(elsewhere)
    env = {"HOME": home, "PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": os.path.join(workdir, "xdg"), "LANG": "C.UTF-8"}
    os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700)
    client = os.path.join(prefix, "bin", "erudiff")
    r = subprocess.run([client, "sample", "the flag of Japan", "-o", "f.png"], capture_output=True, text=True,
                       env=env, cwd=elsewhere, timeout=180)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "f.png\n"
    with open(os.path.join(elsewhere, "f.png"), "rb") as f:
        assert helpers.png_pixels(f.read())[:2] == (32, 32)
    assert "started erudiffd" in r.stderr
    socket_path = os.path.join(env["XDG_RUNTIME_DIR"], "erudiff", "erudiffd.sock")
    [pid] = daemon_pids(socket_path)
    assert os.readlink(f"/proc/{pid}/exe") == os.path.join(prefix, "bin", "erudiffd")
    with open(os.path.join(home, ".local/state/erudiff/erudiffd.log")) as f:
        log = f.read()
    assert f"loaded model mini from {prefix}/share/erudiff/models/mini" in log, log
    assert f"the MiniLM text encoder comes from {prefix}/share/erudiff/minilm" in log, log
    r = subprocess.run([client, "daemon", "stop"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and wait_gone(pid, 20), r.stderr
    # Uninstall removes what the manifest lists, and nothing else.
    keep = os.path.join(prefix, "bin", "mine")
    with open(keep, "w") as f:
        f.write("not erudiff's")
    r = subprocess.run([os.path.join(helpers.REPO, "scripts", "install"), "--uninstall", prefix],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    left = [os.path.relpath(os.path.join(d, f), prefix) for d, _, fs in os.walk(prefix) for f in fs]
    assert left == ["bin/mine"], left
    assert not os.path.exists(os.path.join(prefix, "share", "erudiff"))
