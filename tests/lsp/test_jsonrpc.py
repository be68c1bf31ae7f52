"""coda_lsp.jsonrpc and coda_lsp.messages on in-memory buffers, as rust-analyzer's lsp-server tests
its reader and writer: frames are fed as bytes to an asyncio stream, answers are written into a
BytesIO. No process, no LSP: framing, envelopes, and the matching of answers to our own requests.
"""

import asyncio
import io
import json
import logging

import pytest

from coda_lsp.jsonrpc import Endpoint, StreamReader, read_messages
from coda_lsp.messages import (INTERNAL_ERROR, INVALID_REQUEST, PARSE_ERROR, Notification, Request, RpcError,
                               parse_message)
from helpers import frame, read_frames


class Connection:
    """An Endpoint writing into a BytesIO, with what it handed on and what it rejected."""

    def __init__(self, on_message=None):
        self.received: list = []
        self.rejected: list[str] = []
        self.out = io.BytesIO()
        self.endpoint = Endpoint(on_message or self.received.append, self.rejected.append)
        self.endpoint.set_writer(self.out)

    def answers(self) -> list[dict]:
        return read_frames(self.out.getvalue())

    def clear(self) -> None:
        self.out.seek(0)
        self.out.truncate()

    def feed(self, body: bytes) -> list[dict]:
        """Hand one body to the endpoint; what it wrote in answer."""
        self.clear()
        self.endpoint.handle_body(body)
        return self.answers()


def read_stream(data: bytes, max_bytes: int = 1 << 20) -> Connection:
    """`data` as a client's whole stream, read to its end by `read_messages`."""
    connection = Connection()

    async def read() -> None:
        stream = asyncio.StreamReader()
        stream.feed_data(data)
        stream.feed_eof()
        await read_messages(StreamReader(stream), connection.endpoint, lambda: False, max_bytes)

    asyncio.run(asyncio.wait_for(read(), timeout=10))
    return connection


def note(method: str, **params) -> dict:
    return {"jsonrpc": "2.0", "method": method, "params": params}


# -- framing ------------------------------------------------------------------------------------------

def test_a_frame_is_read_by_its_content_length_whatever_its_body_holds():
    body = b'{"jsonrpc": "2.0",\r\n "method": "a",\r\n\r\n "params": {"text": "Content-Length: 3\\r\\n\\r\\n"}}'
    connection = read_stream(frame(body) + frame({"jsonrpc": "2.0", "id": 1, "method": "b"}))
    assert connection.received == [Notification("a", {"text": "Content-Length: 3\r\n\r\n"}), Request(1, "b")]
    assert connection.answers() == [] and connection.rejected == []


def test_other_header_fields_are_read_past():
    body = json.dumps(note("a", x=1)).encode()
    data = (b"content-length:%d\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n%s"
            % (len(body), body))
    assert read_stream(data + frame(note("b"))).received == [Notification("a", {"x": 1}), Notification("b", {})]


def test_the_reader_finds_the_next_header_after_stray_bytes_and_a_short_frame():
    short = json.dumps({"jsonrpc": "2.0", "id": 4, "method": "short"}).encode()
    data = (b"stray bytes\r\nmore of them\r\n" + frame(note("first"))
            + b"Content-Length: %d\r\n\r\n%s" % (len(short) - 1, short)  # one byte short: "}" is left over
            + frame(note("after the short one"))
            + b"x" * 200_000 + b"\r\n"  # a line over the stream's own limit
            + frame(note("after a long line")))
    connection = read_stream(data)
    assert connection.received == [Notification("first", {}), Notification("after the short one", {}),
                                   Notification("after a long line", {})]
    # the short body is not JSON: answered with id null, though it seems to have the id 4
    assert [(a["id"], a["error"]["code"]) for a in connection.answers()] == [(None, PARSE_ERROR)]


def test_a_frame_over_the_limit_is_skipped_and_answered():
    big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "big", "params": {"pad": "y" * 500}}).encode()
    connection = read_stream(frame(big) + frame({"jsonrpc": "2.0", "id": 2, "method": "small"}), max_bytes=100)
    assert connection.received == [Request(2, "small")]
    [answer] = connection.answers()
    assert answer["id"] is None and answer["error"]["code"] == INVALID_REQUEST
    assert "over the limit of 100" in answer["error"]["message"] and len(connection.rejected) == 1


def test_a_body_cut_short_by_the_end_of_the_stream_is_dropped():
    connection = read_stream(frame(note("whole")) + b'Content-Length: 100\r\n\r\n{"jsonrpc": "2.0", "id": 3')
    assert connection.received == [Notification("whole", {})]
    assert connection.answers() == []


# -- envelopes ----------------------------------------------------------------------------------------

def test_requests_and_notifications_are_parsed_into_their_types():
    connection = Connection()
    for message in ({"jsonrpc": "2.0", "id": 7, "method": "m", "params": {"a": 1}},
                    {"jsonrpc": "2.0", "id": "seven", "method": "m"},
                    {"jsonrpc": "2.0", "id": 0, "method": "m", "params": None},
                    {"jsonrpc": "2.0", "method": "n", "params": [1, 2]},
                    {"jsonrpc": "2.0", "method": "n"}):
        assert connection.feed(json.dumps(message).encode()) == []
    assert connection.received == [Request(7, "m", {"a": 1}), Request("seven", "m"), Request(0, "m"),
                                   Notification("n", [1, 2]), Notification("n")]
    assert all(type(m) is Request for m in connection.received[:3])
    with pytest.raises(AttributeError):  # parsed once: nothing downstream changes a message
        connection.received[0].method = "other"


@pytest.mark.parametrize("body", [b"{not json", b'{"jsonrpc": "2.0", "id": 11, "method": "m", "params": {',
                                  b"\xff\xfe not even text", b"[" * 100_000])
def test_a_body_that_is_not_json_is_answered_with_id_null(body):
    connection = Connection()
    [answer] = connection.feed(body)
    assert answer["id"] is None and answer["error"]["code"] == PARSE_ERROR
    assert connection.received == [] and len(connection.rejected) == 1


@pytest.mark.parametrize("body, answer_id, says", [
    (b'[{"jsonrpc": "2.0", "id": 1, "method": "m"}, {"jsonrpc": "2.0", "id": 2, "method": "m"}]', None, "batches"),
    (b"3", None, "a JSON object"),
    (b'{"jsonrpc": "2.0", "id": 1e400, "method": "m"}', None, "got inf"),  # cannot be written back as JSON
    (b'{"jsonrpc": "2.0", "id": true, "method": "m"}', None, "got True"),
    (b'{"jsonrpc": "2.0", "id": 1.5, "method": "m"}', None, "an integer or a string"),
    (b'{"jsonrpc": "2.0", "id": null, "method": "m"}', None, "an integer or a string"),
    (b'{"jsonrpc": "2.0", "id": [1], "method": "m"}', None, "an integer or a string"),
    (b'{"jsonrpc": "1.0", "id": 5, "method": "m"}', 5, '"jsonrpc" must be "2.0"'),
    (b'{"id": 5, "method": "m"}', 5, '"jsonrpc" must be "2.0"'),
    (b'{"jsonrpc": "1.0", "method": "m"}', None, '"jsonrpc" must be "2.0"'),  # a notification: no id to answer
    (b'{"jsonrpc": "2.0", "id": "six", "method": 7}', "six", '"method" must be a string'),
])
def test_an_invalid_message_is_answered_once_and_handed_on_never(body, answer_id, says):
    connection = Connection()
    [answer] = connection.feed(body)
    assert answer == {"jsonrpc": "2.0", "id": answer_id, "error": {"code": INVALID_REQUEST,
                                                                  "message": connection.rejected[0]}}
    assert says in answer["error"]["message"]
    assert connection.received == [] and len(connection.rejected) == 1
    assert b"Infinity" not in connection.out.getvalue()


def test_a_message_its_handler_fails_on_is_answered_with_an_internal_error():
    def broken(message):
        raise KeyError("a bug")

    connection = Connection(broken)
    [answer] = connection.feed(json.dumps({"jsonrpc": "2.0", "id": 9, "method": "m"}).encode())
    assert answer["id"] == 9 and answer["error"] == {"code": INTERNAL_ERROR, "message": "coda-lsp could not handle m"}
    assert connection.feed(json.dumps(note("n")).encode()) == []  # a notification is never answered


# -- writing ------------------------------------------------------------------------------------------

def test_messages_are_written_as_compact_json_in_frames():
    connection = Connection()
    connection.endpoint.notify("n", {"text": "é"})
    connection.endpoint.respond(1, None)
    connection.endpoint.respond_error(None, PARSE_ERROR, "no")
    body = '{"jsonrpc":"2.0","method":"n","params":{"text":"\\u00e9"}}'
    assert connection.out.getvalue() == (
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body.encode())
        + b'Content-Length: 38\r\n\r\n{"jsonrpc":"2.0","id":1,"result":null}'
        + b'Content-Length: 66\r\n\r\n{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"no"}}')


def test_a_lost_connection_stops_the_writing_and_is_not_raised():
    connection = Connection()
    connection.out.close()
    connection.endpoint.notify("n")
    assert connection.endpoint.closed
    connection.endpoint.notify("n")  # dropped, not raised


# -- our own requests and their answers ---------------------------------------------------------------

def answered(answer_to_request) -> tuple[Connection, object]:
    """Send a request of ours, feed the answer `answer_to_request(its id)`; the connection and
    the request's outcome (its result, or the exception it failed with)."""
    connection = Connection()

    async def exchange():
        future = connection.endpoint.request("client/do", {"x": 1})
        [sent] = connection.answers()
        assert sent == {"jsonrpc": "2.0", "id": sent["id"], "method": "client/do", "params": {"x": 1}}
        connection.feed(json.dumps(answer_to_request(sent["id"])).encode())
        try:
            return await asyncio.wait_for(future, timeout=10)
        except RpcError as error:
            return error

    return connection, asyncio.run(exchange())


@pytest.mark.parametrize("result", [None, {"applied": True}, [1, 2], 0])
def test_an_answer_with_a_result_resolves_the_request(result):
    _, outcome = answered(lambda msg_id: {"jsonrpc": "2.0", "id": msg_id, "result": result})
    assert outcome == result


def test_an_error_answer_fails_the_request_with_its_code_and_message():
    _, outcome = answered(lambda msg_id: {"jsonrpc": "2.0", "id": msg_id,
                                          "error": {"code": -32601, "message": "no such method"}})
    assert isinstance(outcome, RpcError) and (outcome.code, outcome.message) == (-32601, "no such method")


def test_a_request_may_carry_an_id_of_the_callers():
    connection = Connection()

    async def exchange():
        future = connection.endpoint.request("m", msg_id="mine")
        assert connection.answers() == [{"jsonrpc": "2.0", "id": "mine", "method": "m"}]
        connection.endpoint.handle_body(b'{"jsonrpc": "2.0", "id": "mine", "result": 5}')
        return await future

    assert asyncio.run(exchange()) == 5


def test_requests_still_waiting_fail_when_the_other_side_is_gone():
    connection = Connection()

    async def exchange():
        answered_one, waiting = connection.endpoint.request("m", msg_id=1), connection.endpoint.request("m", msg_id=2)
        connection.endpoint.handle_body(b'{"jsonrpc": "2.0", "id": 1, "result": 5}')
        connection.endpoint.fail_waiting("the other side is gone")
        with pytest.raises(RpcError, match="the other side is gone"):
            await asyncio.wait_for(waiting, timeout=10)
        return await answered_one

    assert asyncio.run(exchange()) == 5


def test_an_answer_with_neither_result_nor_error_fails_the_request():
    _, outcome = answered(lambda msg_id: {"jsonrpc": "2.0", "id": msg_id})
    assert isinstance(outcome, RpcError) and outcome.code == INVALID_REQUEST
    assert "neither result nor error" in outcome.message


def test_an_answer_to_no_request_is_logged_and_the_connection_goes_on(caplog):
    connection = Connection()

    async def exchange():
        future = connection.endpoint.request("client/do")
        msg_id = connection.answers()[0]["id"]
        connection.clear()
        with caplog.at_level(logging.WARNING, logger="coda_lsp.jsonrpc"):
            for stray in ({"jsonrpc": "2.0", "id": "coda-999", "result": 1}, {"jsonrpc": "2.0", "result": 1}):
                connection.endpoint.handle_body(json.dumps(stray).encode())
            assert not future.done()
            connection.endpoint.handle_body(json.dumps({"jsonrpc": "2.0", "id": msg_id, "result": "ok"}).encode())
            assert await future == "ok"
            # the same answer again: its request is answered, so it is an answer to no request
            connection.endpoint.handle_body(json.dumps({"jsonrpc": "2.0", "id": msg_id, "result": "ok"}).encode())

    asyncio.run(exchange())
    assert not connection.endpoint._waiting, "an answered request is forgotten (a long session makes many)"
    stray = [r for r in caplog.records if "an answer to no request of ours" in r.getMessage()]
    assert len(stray) == 3
    assert connection.out.getvalue() == b"" and connection.received == []


def test_a_response_is_parsed_as_one():
    assert parse_message(b'{"jsonrpc": "2.0", "id": "coda-1", "result": null}').result is None
    error = parse_message(b'{"jsonrpc": "2.0", "id": 1, "error": {"code": "x", "message": 3}}').error
    assert (error.code, error.message) == (INTERNAL_ERROR, "3")  # a code that is not an integer
