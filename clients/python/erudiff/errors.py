"""Errors raised by the erudiff client, each carrying the JSON-RPC error code where there is one."""


class ErudiffError(Exception):
    """Base class of everything this package raises."""


class DaemonUnavailable(ErudiffError):
    """The daemon's socket cannot be reached, or the connection was lost."""


class ProtocolError(ErudiffError):
    """The daemon sent something that is not a JSON-RPC 2.0 message."""


class RpcError(ErudiffError):
    """A JSON-RPC error reply. ``code``, ``message`` and ``data`` are the error object's members."""

    code = None

    def __init__(self, code, message, data=None, method=None):
        self.code = code
        self.message = message
        self.data = data
        self.method = method
        where = f"{method}: " if method else ""
        super().__init__(f"{where}{message} ({code})")

    @staticmethod
    def from_error(error, method=None):
        """Builds the most specific subclass for a JSON-RPC error object."""
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message", "") if isinstance(error, dict) else str(error)
        data = error.get("data") if isinstance(error, dict) else None
        cls = _BY_CODE.get(code, RpcError)
        return cls(code, message, data, method)


class ParseError(RpcError):
    code = -32700


class InvalidRequest(RpcError):
    code = -32600


class MethodNotFound(RpcError):
    code = -32601


class InvalidParams(RpcError):
    code = -32602


class InternalError(RpcError):
    code = -32603


class RequestCancelled(RpcError):
    """The request was cancelled (``$/cancelRequest``) before it completed."""

    code = -32800


class ServerBusy(RpcError):
    """The daemon's job queue is full (``--max-queue``); retry later."""

    code = -32001


class ModelNotLoaded(RpcError):
    code = -32002


class ShuttingDown(RpcError):
    code = -32003


class MessageTooLarge(RpcError):
    code = -32004


_BY_CODE = {c.code: c for c in (ParseError, InvalidRequest, MethodNotFound, InvalidParams, InternalError,
                                RequestCancelled, ServerBusy, ModelNotLoaded, ShuttingDown, MessageTooLarge)}
