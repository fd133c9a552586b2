"""A stdlib-only client of erudiffd: JSON-RPC 2.0 over its Unix socket, one JSON message per line.

One connection per ``Client``; a reader thread routes replies to the calls waiting for them and
``$/progress`` notifications to their callbacks, so several threads may call at once.
"""

import collections
import itertools
import json
import os
import socket
import threading

from . import autostart as _autostart
from .errors import DaemonUnavailable, ErudiffError, ProtocolError, RequestCancelled, RpcError
from .images import Image, Images

Progress = collections.namedtuple("Progress", "kind percentage message title")
Progress.__doc__ = """One ``$/progress`` value: kind is "begin", "report" or "end"; percentage 0..100 or None."""


def default_socket_path():
    """``$ERUDIFF_SOCKET``, else the daemon's default: ``$XDG_RUNTIME_DIR/erudiff/erudiffd.sock``, else
    ``/tmp/erudiff-$UID/erudiffd.sock``."""
    env = os.environ.get("ERUDIFF_SOCKET")
    if env:
        return env
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "erudiff", "erudiffd.sock")
    return f"/tmp/erudiff-{os.getuid()}/erudiffd.sock"


def _cannot_connect(path, error):
    """Why a connection failed, with what to do about it (as the shell client says it)."""
    why = error.strerror or str(error)
    if isinstance(error, (FileNotFoundError, ConnectionRefusedError)):
        hint = ("no daemon listens there and starting one is off (autostart=False or ERUDIFF_NO_AUTOSTART); "
                "is erudiffd running? start it with `erudiffd`, or give its socket with socket_path= or "
                "ERUDIFF_SOCKET")
    elif isinstance(error, PermissionError):
        hint = "the socket belongs to another user (erudiffd serves only its own uid)"
    else:
        hint = "is erudiffd running? (socket_path= or ERUDIFF_SOCKET names its socket)"
    return f"cannot connect to erudiffd at {path}: {why}; {hint}"


class Call:
    """A request in flight. ``result()`` waits for it; ``cancel()`` sends ``$/cancelRequest`` (the
    call then ends with ``RequestCancelled`` unless it completed first)."""

    def __init__(self, client, request_id, method, progress):
        self.id = request_id
        self.method = method
        self._client = client
        self._progress = progress
        self._done = threading.Event()
        self._result = None
        self._error = None
        self._cancel_sent = False

    def done(self):
        return self._done.is_set()

    def cancel(self):
        """Asks the daemon to cancel this request (no-op once it is done)."""
        if not self._done.is_set() and not self._cancel_sent:
            self._cancel_sent = True
            try:
                self._client.notify("$/cancelRequest", {"id": self.id})
            except ErudiffError:
                pass

    def result(self, timeout=None):
        """The result, or raises the ``RpcError`` subclass of the error reply. ``TimeoutError`` if
        ``timeout`` seconds pass first (the request keeps running; cancel it if you wish)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"{self.method}: no reply within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._result

    def _finish(self, result=None, error=None):
        if self._done.is_set():
            return
        self._result, self._error = result, error
        self._done.set()

    def _on_progress(self, value):
        if self._progress is None or not isinstance(value, dict):
            return
        p = Progress(value.get("kind"), value.get("percentage"), value.get("message"), value.get("title"))
        try:
            keep_going = self._progress(p)
        except Exception:  # a broken callback must not kill the reader thread
            keep_going = None
        if keep_going is False:
            self.cancel()


class SampleResult:
    """What ``sample`` returns: ``images`` (an ``Images`` list), ``elapsed_ms`` and the raw result."""

    def __init__(self, raw):
        self.raw = raw
        self.images = Images(Image(r) for r in raw.get("images", []))
        self.elapsed_ms = raw.get("elapsedMs")

    def _repr_html_(self):
        return self.images._repr_html_()

    def __iter__(self):
        return iter(self.images)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]

    def __repr__(self):
        return f"SampleResult({len(self.images)} images, {self.elapsed_ms} ms)"


class Client:
    """A connection to erudiffd. Use as a context manager, or call ``close()``.

    Every RPC method has a method here (``sample``, ``match_distributions``, ``rl_step``, ``evaluate``,
    ``encode``, ``models_list`` …); ``call(method, params)`` reaches any other. Long calls take
    ``progress=callback`` (called with a ``Progress``; returning False cancels the call).

    When no daemon answers on the socket, the client starts one (see ``erudiff.autostart``) that
    exits after ``idle_exit`` with no client (default ``$ERUDIFF_IDLE_EXIT``, else 30m), and says so
    on stderr; ``autostart=False`` (default: off when ``ERUDIFF_NO_AUTOSTART`` is set) raises
    ``DaemonUnavailable`` instead.
    """

    def __init__(self, socket_path=None, timeout=None, connect_timeout=5.0, autostart=None, idle_exit=None,
                 start_timeout=_autostart.START_TIMEOUT):
        self.socket_path = socket_path or default_socket_path()
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.autostart = _autostart.autostart_enabled() if autostart is None else autostart
        self.idle_exit = idle_exit
        self.start_timeout = start_timeout
        self._ids = itertools.count(1)
        self._pending = {}
        self._tokens = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._closed = False
        self._lost = None
        self._notice = None
        self._connect()

    def _connect(self):
        try:
            sock = self._open_socket()
        except (FileNotFoundError, ConnectionRefusedError) as e:
            if not self.autostart:
                raise DaemonUnavailable(_cannot_connect(self.socket_path, e)) from None
            _autostart.ensure_daemon(self.socket_path, idle_exit=self.idle_exit, start_timeout=self.start_timeout)
            try:
                sock = self._open_socket()
            except OSError as e2:
                raise DaemonUnavailable(f"cannot connect to erudiffd at {self.socket_path} after starting it: "
                                        f"{e2.strerror or e2}") from None
        except OSError as e:
            raise DaemonUnavailable(_cannot_connect(self.socket_path, e)) from None
        self._sock = sock
        self._lost = None
        self._notice = None
        self._reader = threading.Thread(target=self._read_loop, name="erudiff-reader", daemon=True)
        self._reader.start()

    def _open_socket(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.connect_timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        sock.settimeout(None)
        return sock

    # -- plumbing -------------------------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Closes the connection; the daemon cancels this connection's unfinished requests."""
        if self._closed:
            return
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._reader.join(timeout=5)

    def _send(self, message):
        data = (json.dumps(message, separators=(",", ":"), allow_nan=False) + "\n").encode()
        with self._send_lock:
            if self._closed:
                raise DaemonUnavailable("the client is closed")
            if self._lost:
                # The connection was lost (the daemon restarted, or closed it while idle to make room
                # for another client): the calls in flight then failed; new ones get a new connection.
                self._reader.join(timeout=5)
                self._sock.close()
                self._connect()
            try:
                self._sock.sendall(data)
            except OSError as e:
                raise DaemonUnavailable(f"lost the connection to erudiffd: {e}") from None

    def notify(self, method, params=None):
        """Sends a notification (no reply)."""
        message = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self._send(message)

    def request(self, method, params=None, progress=None):
        """Sends a request and returns its ``Call`` at once."""
        request_id = next(self._ids)
        call = Call(self, request_id, method, progress)
        if progress is not None:
            params = dict(params or {})
            token = f"erudiff-py-{request_id}"
            params["workDoneToken"] = token
        message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        with self._lock:
            self._pending[request_id] = call
            if progress is not None:
                self._tokens[token] = call
        try:
            self._send(message)
        except ErudiffError:
            with self._lock:
                self._pending.pop(request_id, None)
            raise
        return call

    def call(self, method, params=None, progress=None, timeout=None):
        """Sends a request and waits for its result. Ctrl-C while waiting cancels the request."""
        call = self.request(method, params, progress)
        try:
            return call.result(timeout if timeout is not None else self.timeout)
        except KeyboardInterrupt:
            call.cancel()
            try:
                call.result(5)
            except (RequestCancelled, RpcError, TimeoutError, ErudiffError):
                pass
            raise

    def batch(self, requests, timeout=None):
        """Sends ``[(method, params), …]`` as one JSON-RPC batch; returns results in order, with an
        ``RpcError`` instance in place of each failed one."""
        calls = []
        messages = []
        with self._lock:
            for method, params in requests:
                request_id = next(self._ids)
                call = Call(self, request_id, method, None)
                self._pending[request_id] = call
                calls.append(call)
                m = {"jsonrpc": "2.0", "id": request_id, "method": method}
                if params is not None:
                    m["params"] = params
                messages.append(m)
        self._send(messages)
        out = []
        for c in calls:
            try:
                out.append(c.result(timeout if timeout is not None else self.timeout))
            except RpcError as e:
                out.append(e)
        return out

    def _read_loop(self):
        reason = "the daemon closed the connection"
        try:
            f = self._sock.makefile("rb")
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    message = json.loads(line)
                except ValueError:
                    reason = f"the daemon sent invalid JSON: {line[:80]!r}"
                    break
                for m in message if isinstance(message, list) else [message]:
                    self._route(m)
        except (OSError, ValueError):
            pass
        if self._closed:
            reason = "the client was closed"
        elif self._notice:
            reason = f"the daemon closed the connection: {self._notice}"
        with self._lock:
            self._lost = reason
            pending = list(self._pending.values())
            self._pending.clear()
            self._tokens.clear()
        for call in pending:
            call._finish(error=DaemonUnavailable(f"{call.method}: {reason}"))

    def _route(self, m):
        if not isinstance(m, dict):
            return
        if m.get("method") == "$/progress":
            params = m.get("params") or {}
            with self._lock:
                call = self._tokens.get(params.get("token"))
            if call is not None:
                call._on_progress(params.get("value"))
            return
        if "method" in m:
            return  # erudiffd sends no other notification
        with self._lock:
            call = self._pending.pop(m.get("id"), None)
            if call is not None:
                for t, c in list(self._tokens.items()):
                    if c is call:
                        del self._tokens[t]
        if call is None:
            if m.get("id") is None and isinstance(m.get("error"), dict):
                self._notice = m["error"].get("message")   # why the daemon is about to close the connection
            return  # e.g. a parse error about a message this client did not send
        if "error" in m:
            call._finish(error=RpcError.from_error(m["error"], call.method))
        elif "result" in m:
            call._finish(result=m["result"])
        else:
            call._finish(error=ProtocolError(f"{call.method}: reply without result or error"))

    @staticmethod
    def _params(**kw):
        """Only the parameters that were given: the daemon owns the defaults."""
        extra = kw.pop("extra", None) or {}
        out = {k: v for k, v in kw.items() if v is not None}
        out.update(extra)
        return out

    # -- lifecycle and status -------------------------------------------------------------------

    def initialize(self, **params):
        """LSP handshake (optional): server info and capabilities."""
        return self.call("initialize", params)

    def shutdown(self):
        """Checkpoints and stops every job; afterwards the daemon accepts only ``exit``."""
        return self.call("shutdown")

    def exit(self):
        """Ends the daemon (after ``shutdown``: exit code 0)."""
        self.notify("exit")

    def status(self):
        """``{uptimeMs, models, jobs, queue, …}``, answered at once even while training runs."""
        return self.call("status")

    # -- engine methods (DESIGN §7) -------------------------------------------------------------

    def sample(self, prompt=None, *, prompts=None, count=None, steps=None, guidance=None, seed=None,
               sampler=None, noise_level=None, adapter=None, output_dir=None, keep=None, model=None, progress=None,
               timeout=None, **extra):
        """Generates images; returns a ``SampleResult`` whose images show in Jupyter. Each image's ``id``
        can be rewarded later with ``rl_step(samples=...)``."""
        output = {"dir": os.path.abspath(output_dir)} if output_dir else None
        params = self._params(prompt=prompt, prompts=prompts, count=count, steps=steps, guidance=guidance,
                              seed=seed, sampler=sampler, noiseLevel=noise_level, adapter=adapter, output=output,
                              keep=keep, model=model, extra=extra)
        return SampleResult(self.call("sample", params, progress, timeout))

    def match_distributions(self, pairs=None, *, set=None, steps=None, batch_size=None, learning_rate=None,
                            anchors=None, preserve_weight=None, lora=None, seed=None, replay=None,
                            time_sampling=None, fresh_adapter=None, dislocation=None, weight_decay=None,
                            model=None, progress=None, timeout=None, **extra):
        """DK-DM. ``pairs`` is ``[{"implicit": …, "explicit": …}]`` or ``[(implicit, explicit)]``.
        Returns ``{steps, loss, dislocationBefore, dislocationAfter, …}``."""
        if pairs is not None:
            pairs = [p if isinstance(p, dict) else {"implicit": p[0], "explicit": p[1]} for p in pairs]
        params = self._params(pairs=pairs, set=set, steps=steps, batchSize=batch_size, learningRate=learning_rate,
                              anchors=anchors, preserveWeight=preserve_weight, lora=lora, seed=seed, replay=replay,
                              timeSampling=time_sampling, freshAdapter=fresh_adapter, dislocation=dislocation,
                              weightDecay=weight_decay, model=model, extra=extra)
        return self.call("matchDistributions", params, progress, timeout)

    def rl_step(self, prompts=None, *, set=None, group_size=None, rounds=None, reward=None, samples=None, beta=None,
                learning_rate=None, kl_weight=None, seed=None, kinds=None, captions=None, steps_per_round=None,
                batch_size=None, prompts_per_round=None, advantage_clip=None, sampling_steps=None, guidance=None,
                sampler=None, noise_level=None, lora=None, fresh_adapter=None, model=None, progress=None,
                timeout=None, **extra):
        """NO-RL. ``samples`` (caller rewards for sample ids) may be ``[{"id", "reward"}]``,
        ``[(id, reward)]`` or ``{id: reward}``. Returns ``{rewardMean, rewardStd, negatives, loss, …}``."""
        if isinstance(samples, dict):
            samples = [{"id": k, "reward": v} for k, v in samples.items()]
        elif samples is not None:
            samples = [s if isinstance(s, dict) else {"id": s[0], "reward": s[1]} for s in samples]
        params = self._params(prompts=prompts, set=set, groupSize=group_size, rounds=rounds, reward=reward,
                              samples=samples, beta=beta, learningRate=learning_rate, klWeight=kl_weight, seed=seed,
                              kinds=kinds, captions=captions, stepsPerRound=steps_per_round, batchSize=batch_size,
                              promptsPerRound=prompts_per_round, advantageClip=advantage_clip,
                              samplingSteps=sampling_steps, guidance=guidance, sampler=sampler,
                              noiseLevel=noise_level, lora=lora, freshAdapter=fresh_adapter, model=model, extra=extra)
        return self.call("rlStep", params, progress, timeout)

    def evaluate(self, set=None, *, items=None, samples_per_item=None, seed=None, steps=None, guidance=None,
                 adapter=None, explicit_count=None, dislocation=None, include_items=None, model=None, progress=None,
                 timeout=None, **extra):
        """Scores the model on a prompt set (or a list of sets) or on caller-supplied knowledge items."""
        params = self._params(set=set, items=items, samplesPerItem=samples_per_item, seed=seed, steps=steps,
                              guidance=guidance, adapter=adapter, explicitCount=explicit_count,
                              dislocation=dislocation, includeItems=include_items, model=model, extra=extra)
        return self.call("evaluate", params, progress, timeout)

    def encode(self, prompts, *, model=None, **extra):
        """The text encoder's view: ``{"tokens": [[id]], "pooled": [[float]], "maxLength": n}``."""
        if isinstance(prompts, str):
            prompts = [prompts]
        return self.call("encode", self._params(prompts=list(prompts), model=model, extra=extra))

    def models_list(self):
        """``{"models": [{name, bytes, adapter, path, memory, …}]}``."""
        return self.call("models/list")

    def models_load(self, name, path, *, restore_adapter=None, progress=None, **extra):
        """Loads a model folder under ``name`` (its checkpointed adapter is restored unless
        ``restore_adapter=False``)."""
        return self.call("models/load", self._params(name=name, path=os.path.abspath(str(path)),
                                                     restoreAdapter=restore_adapter, extra=extra), progress)

    def models_unload(self, name):
        return self.call("models/unload", {"name": name})

    def adapters_save(self, path=None, *, overwrite=None, model=None, **extra):
        """Saves the adapter (PEFT safetensors) to ``path``, or to its checkpoint under the state dir.
        An existing file that is not an adapter erudiff wrote is replaced only with ``overwrite=True``."""
        return self.call("adapters/save", self._params(path=None if path is None else os.path.abspath(str(path)),
                                                       overwrite=overwrite, model=model, extra=extra))

    def adapters_load(self, path, *, alpha=None, model=None, **extra):
        return self.call("adapters/load", self._params(path=os.path.abspath(str(path)), alpha=alpha, model=model,
                                                       extra=extra))

    def adapters_reset(self, *, lora=None, remove=None, model=None, **extra):
        """A fresh adapter (of ``lora``'s shape), or none with ``remove=True``."""
        return self.call("adapters/reset", self._params(lora=lora, remove=remove, model=model, extra=extra))

    def images_grid(self, rows, path, *, row_labels=None, column_labels=None, scale=None, overwrite=None, **extra):
        """Writes a labelled sheet of images to ``path``: cells are ``Image`` objects, sample ids
        (``{"id": …}``), PNG paths or None. An existing file that is not a PNG erudiff wrote is
        replaced only with ``overwrite=True``."""
        cells = [[({"id": c.id} if isinstance(c, Image) else c) for c in row] for row in rows]
        return self.call("images/grid", self._params(rows=cells, path=os.path.abspath(str(path)),
                                                     rowLabels=row_labels, columnLabels=column_labels, scale=scale,
                                                     overwrite=overwrite, extra=extra))
