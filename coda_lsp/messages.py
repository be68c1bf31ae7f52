"""JSON-RPC 2.0 messages, parsed once where they come in: a body is a `Request`, a `Notification`
or a `Response` (the other side's answer to one of ours), or it is answered as bad.

The envelope is checked before anyone acts on a message. Every request whose id
can be read gets an answer: -32600 (not a valid request). A body that is not
JSON gets -32700 with `"id": null`, as JSON-RPC 2.0 says, even where it seems to
begin with an id: that id may be a request of the client's still in flight,
which would then get two answers. A batch (LSP has none) gets one -32600 with
`"id": null`. An answer that is neither a result nor an error stands for an
error, so the request it answers fails instead of waiting forever.

Nothing here knows LSP, or how messages travel (coda_lsp.jsonrpc).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# Error codes: JSON-RPC 2.0's, and LSP's own (the range JSON-RPC reserves for implementations).
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603
SERVER_NOT_INITIALIZED, REQUEST_CANCELLED = -32002, -32800


class RpcError(Exception):
    """An error answer: raised by a handler to answer with it, or by `Endpoint.request` when the
    other side answered with one (or with something that is not an answer)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def valid_id(value) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


@dataclass(frozen=True)
class Request:
    """A request of the other side's: it wants an answer with this id."""
    id: int | str
    method: str
    params: object = None


@dataclass(frozen=True)
class Notification:
    """A notification of the other side's: nobody answers it."""
    method: str
    params: object = None


@dataclass(frozen=True)
class Response:
    """The other side's answer to one of our requests: a result, or the error it stands for (an
    answer with neither is an error too). `id` is None where it had none that could be ours."""
    id: int | str | None
    result: object = None
    error: RpcError | None = None


class BadMessage(RpcError):
    """A message that cannot be acted on; `answer_id` is what its error answer carries (None: null)."""

    def __init__(self, answer_id, code: int, message: str):
        super().__init__(code, message)
        self.answer_id = answer_id


def parse_message(body: bytes) -> Request | Notification | Response:
    """One message body as the message it is, its envelope checked; BadMessage when it is none."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, or nested too deep
        raise BadMessage(None, PARSE_ERROR, f"the message is not valid JSON ({type(exc).__name__}: {exc})") from None
    if isinstance(data, list):  # a batch: LSP has none; one answer, as JSON-RPC 2.0 answers an invalid batch
        raise BadMessage(None, INVALID_REQUEST, "batches of messages are not supported by LSP")
    if not isinstance(data, dict):
        raise BadMessage(None, INVALID_REQUEST, f"a message must be a JSON object, got {type(data).__name__}")
    msg_id, method = data.get("id"), data.get("method")
    if "id" in data and not valid_id(msg_id):
        # answered with id null: an id like 1e400 cannot even be written back as JSON
        raise BadMessage(None, INVALID_REQUEST, f"a message id must be an integer or a string, got {msg_id!r:.80}")
    answerable = msg_id if "method" in data else None
    if data.get("jsonrpc") != "2.0":
        raise BadMessage(answerable, INVALID_REQUEST, f'"jsonrpc" must be "2.0", got {data.get("jsonrpc")!r:.80}')
    if "method" not in data:
        return _response(data)
    if not isinstance(method, str):
        raise BadMessage(answerable, INVALID_REQUEST, f'"method" must be a string, got {method!r:.80}')
    if "id" in data:
        return Request(msg_id, method, data.get("params"))
    return Notification(method, data.get("params"))


def _response(data: dict) -> Response:
    error = data.get("error")
    if isinstance(error, dict):
        code = error.get("code") if isinstance(error.get("code"), int) else INTERNAL_ERROR
        return Response(data.get("id"), error=RpcError(code, str(error.get("message", ""))))
    if "result" in data:
        return Response(data.get("id"), result=data["result"])
    return Response(data.get("id"), error=RpcError(INVALID_REQUEST,
                                                   f"an answer with neither result nor error: {data!r:.200}"))
