"""erudiff: a standard-library client of erudiffd, the daemon that keeps text-to-image flow models warm.

    from erudiff import Client
    with Client() as c:
        print(c.status())
        result = c.sample("the flag of Japan", seed=7)
        result.images[0]            # shows itself in Jupyter
"""

__version__ = "0.1.0"   # the client's own version (pyproject.toml reads it); the protocol's is in openrpc.json

from .autostart import ensure_daemon
from .client import Call, Client, Progress, SampleResult, default_socket_path
from .errors import (DaemonUnavailable, ErudiffError, InternalError, InvalidParams, InvalidRequest,
                     MessageTooLarge, MethodNotFound, ModelNotLoaded, ParseError, ProtocolError, RequestCancelled,
                     RpcError, ServerBusy, ShuttingDown)
from .images import Image, Images

__all__ = [
    "__version__", "Call", "Client", "Progress", "SampleResult", "default_socket_path", "ensure_daemon", "Image",
    "Images",
    "ErudiffError", "DaemonUnavailable", "ProtocolError", "RpcError", "ParseError", "InvalidRequest",
    "MethodNotFound", "InvalidParams", "InternalError", "RequestCancelled", "ServerBusy", "ModelNotLoaded",
    "ShuttingDown", "MessageTooLarge",
]
