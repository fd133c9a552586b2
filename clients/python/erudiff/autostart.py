"""Starting erudiffd on demand, as language-server clients do: when nothing answers on the socket, the
client starts the daemon detached (its own session, standard input /dev/null, its log appended to
``erudiffd.log`` in the state directory) with an idle exit, waits until it answers, and goes on.

Race-free: the client holds the start lock ``<socket>.lock`` (flock) from its second look at the socket
to the moment the new daemon answers, so two clients starting at once start one daemon. A daemon
leaving at its idle time takes the same lock before it stops listening and keeps it until it has saved
its adapters and exited, so the next one starts only after that. The shell client (clients/erudiff)
does the same, with the same variables:

- ``ERUDIFF_NO_AUTOSTART=1``: never start one (also ``Client(autostart=False)``);
- ``ERUDIFF_IDLE_EXIT``: the started daemon's ``--idle-exit`` (default 30m; 0 = never);
- ``ERUDIFFD``: the daemon binary; else ``$ERUDIFF_HOME/bin`` or ``$ERUDIFF_HOME/.build/release``, the
  checkout this package lives in (``.build/release/erudiffd``), ``erudiffd`` on ``PATH``;
- ``ERUDIFFD_ARGS``: more arguments for the started daemon, split on whitespace.
"""

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

from .errors import DaemonUnavailable

DEFAULT_IDLE_EXIT = "30m"
START_TIMEOUT = 60.0
LOG_NAME = "erudiffd.log"
LOG_ROTATE_BYTES = 8 << 20


def autostart_enabled():
    """False when ``ERUDIFF_NO_AUTOSTART`` is set to anything but empty or 0."""
    return os.environ.get("ERUDIFF_NO_AUTOSTART", "") in ("", "0")


def state_dir():
    """The daemon's default state directory: ``$XDG_STATE_HOME/erudiff``, else ``~/.local/state/erudiff``."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "erudiff")


def find_daemon():
    """The erudiffd binary to start, or raises ``DaemonUnavailable`` listing where it looked."""
    env = os.environ.get("ERUDIFFD")
    if env:
        if os.access(env, os.X_OK):
            return env
        raise DaemonUnavailable(f"ERUDIFFD names {env}, which is not an executable")
    candidates = []
    home = os.environ.get("ERUDIFF_HOME")
    if home:
        candidates += [os.path.join(home, "bin", "erudiffd"), os.path.join(home, ".build", "release", "erudiffd")]
    checkout = os.path.abspath(os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", ".."))
    candidates.append(os.path.join(checkout, ".build", "release", "erudiffd"))
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    on_path = shutil.which("erudiffd")
    if on_path:
        return on_path
    raise DaemonUnavailable("erudiffd was not found to start it (looked at " + ", ".join(candidates)
                            + " and on PATH); run scripts/install, or set ERUDIFFD or ERUDIFF_HOME")


def answers(path):
    """True when a daemon accepts a connection on ``path``."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


@contextlib.contextmanager
def start_lock(path, deadline):
    """Holds the flock on ``path`` (created 0600), waiting until ``deadline`` (time.monotonic) at most."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DaemonUnavailable(f"another client has held the start lock {path} for too long "
                                            "(a daemon starting or exiting); try again") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def _tail(path, lines=8):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def ensure_daemon(socket_path, idle_exit=None, start_timeout=START_TIMEOUT, binary=None, args=None):
    """Makes sure a daemon answers on ``socket_path``, starting one if none does. Returns the pid of the
    daemon it started, or None when one answered. Raises ``DaemonUnavailable`` naming the log when the
    daemon exits before it listens or does not listen within ``start_timeout`` seconds."""
    socket_path = os.path.abspath(socket_path)     # the daemon runs in /
    if answers(socket_path):
        return None
    directory = os.path.dirname(socket_path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    deadline = time.monotonic() + start_timeout
    with start_lock(socket_path + ".lock", deadline):
        if answers(socket_path):          # another client started one while we waited for the lock
            return None
        binary = binary or find_daemon()
        idle = idle_exit if idle_exit is not None else (os.environ.get("ERUDIFF_IDLE_EXIT") or DEFAULT_IDLE_EXIT)
        extra = list(args) if args is not None else os.environ.get("ERUDIFFD_ARGS", "").split()
        cmd = [binary, "--socket", socket_path, "--idle-exit", str(idle)] + extra
        logs = state_dir()
        os.makedirs(logs, mode=0o700, exist_ok=True)
        log = os.path.join(logs, LOG_NAME)
        with contextlib.suppress(OSError):
            if os.path.getsize(log) > LOG_ROTATE_BYTES:
                os.replace(log, log + ".1")
        with open(log, "ab") as f:
            os.chmod(log, 0o600)
            f.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} erudiff (Python, pid {os.getpid()}) starts: "
                    f"{' '.join(cmd)}\n".encode())
            f.flush()
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=f, start_new_session=True,
                                    close_fds=True, cwd="/")
        # Reaps the daemon when it exits while this process still runs (no zombie, no ResourceWarning).
        threading.Thread(target=proc.wait, name="erudiffd-reaper", daemon=True).start()
        while not answers(socket_path):
            code = proc.poll()
            if code is not None:
                raise DaemonUnavailable(f"erudiffd exited with code {code} before it listened on {socket_path}; "
                                        f"its log {log} ends with:\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise DaemonUnavailable(f"erudiffd (pid {proc.pid}) did not listen on {socket_path} within "
                                        f"{start_timeout:g} s; it may still be starting: see its log {log}")
            time.sleep(0.05)
    leaves = "it does not exit when idle" if str(idle) == "0" else f"it exits after {idle} idle"
    print(f"erudiff: started erudiffd (pid {proc.pid}) on {socket_path}; {leaves}; log: {log}",
          file=sys.stderr, flush=True)
    return proc.pid
