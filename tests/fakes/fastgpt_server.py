"""A fake FastGPT for tests: real HTTP on 127.0.0.1, the wire format of a FastGPT app's chat API
(``projects/app/src/pages/api/v1/chat/completions.ts``), with its conversations and its errors.

    with FakeFastGPT(reply="多喝水。") as fake:
        # point providers.fastgpt.base_url at fake.url (it ends in /api, as FastGPT's docs write it)
        assert fake.chats[fake.last.body["chatId"]].items[-1] == ("assistant", "多喝水。")

What FastGPT does, and so does this:

- ``POST /api/v1/chat/completions`` with ``Authorization: Bearer <the app's key>`` and
  ``{"chatId"?, "stream", "detail", "variables", "customUid"?, "responseChatItemId"?, "messages"}``.
- ``chatId`` given: the chat's stored history, then every message but the last, is the history
  the workflow sees (``concatHistories``); the last message is the question. A chatId it has
  never seen starts a chat under that id. No chatId: the history is ``messages`` alone and the
  chat is saved under a random id that is never told (the answer's ``id`` is ``""``). The
  question and the answer are saved when the answer is complete, not before.
- A chat saved by another team is refused: ``unAuthChat``. ``fake.give_away(chat_id)`` makes one.
- Not streaming: ``{"id": chatId or "", "model": "", "usage": 1/1/1, "choices": [{"message":
  {"role": "assistant", "content"}, "finish_reason": "stop", "index": 0}], "error"?}``.
- Streaming, ``detail: false``: chunked ``data: {chunk}\\n\\n`` lines with a space and no
  ``event:`` line: ``{"id": "", "object": "", "created": 0, "model": "", "choices": [{"delta":
  {"role": "assistant", "content": piece}, "index": 0, "finish_reason": null}]}``, then the same
  with ``content: null`` and ``finish_reason: "stop"``, then ``data: [DONE]``.
- Errors: a known one is its ERROR_RESPONSE object ``{"code", "statusText", "message", "data":
  null}``, with HTTP ``error_status`` (200 as FastGPT long answered; newer versions say 500);
  any other is HTTP 500 ``{"code": 500, "statusText": "", "message", "data": null}``. In a
  stream every error is ``event: error`` + ``data: {...}`` with status 200, a bad key too (the
  check runs inside the handler's try), and before the workflow starts there is no
  Content-Type header at all.
- Images: the question's ``content`` may be OpenAI parts, ``text`` and ``image_url`` with a
  ``data:`` URL, which FastGPT hands its model unchanged (one it cannot read: HTTP 500 ``Invalid
  image URL``, as FastGPT#1217 answered); each request keeps the decoded bytes in ``images``
  and the question's text in ``question``.
- ``chat_title``: as newer versions that title a new chat, an ``event: chatTitle`` + ``data:
  {"title"}`` before the answer, named even with ``detail: false``.

``mode`` scripts what goes wrong (MODES); the wire machinery (chunking, stalls, hang-ups,
``requests``, ``release``, ``stop``) is `FakeOpenAI`'s.
"""

from __future__ import annotations

import json
import secrets

from fakes import FakeServer
from fakes.image_parts import content_parts
from fakes.openai_server import FakeOpenAI, _Handler as _OpenAIHandler

MODES = {
    "ok": "answer normally",
    "quota": "insufficientQuota (510), as when the team's points are spent",
    "server_error": "a workflow that throws before any text: HTTP 500, or an error event in a stream",
    "node_error": "the app's model node fails: status 200, no text, its error beside the choices",
    "slow_first_token": "wait first_token_delay seconds before the first piece (or the whole answer)",
    "stall_mid_stream": "send fault_after pieces, then hang until release(), stop() or stall_seconds",
    "error_mid_stream": "send fault_after pieces, then an error event, and end the stream",
    "broken": "send fault_after pieces, then drop the connection without finishing the body",
}

# FastGPT's ERROR_RESPONSE entries (packages/global/common/error/errorCode.ts, code/chat.ts).
ERRORS = {
    "unAuthApiKey": {"code": 514, "statusText": "unAuthApiKey", "message": "Api Key 不合法", "data": None},
    "insufficientQuota": {"code": 510, "statusText": "insufficientQuota", "message": "账号余额不足", "data": None},
    "unAuthChat": {"code": 504000, "statusText": "unAuthChat", "message": "无权操作该对话记录", "data": None},
}
NODE_ERROR = "LLM model response empty"
THROWN = "Connection error."  # what the workflow's model call threw


class Chat:
    """One chat as FastGPT keeps it: its items (role, text), variables and who used it."""

    def __init__(self, chat_id: str, team: str):
        self.id, self.team = chat_id, team
        self.items: list[tuple[str, str]] = []
        self.variables: dict = {}
        self.uids: set = set()  # the customUid of every turn saved in it


class FakeFastGPT(FakeOpenAI):
    def __init__(self, reply="Hello from FastGPT.", mode="ok", *, api_key="fastgpt-testkey", **options):
        super().__init__(reply, mode, api_key=api_key, **options)
        self.chats: dict[str, Chat] = {}
        self.team = "team-1"
        self.error_status = 200
        self.chat_title = False  # newer versions name a new chat in its stream: event: chatTitle

    name, url_path = "fake-fastgpt", "/api"  # FastGPT's docs give its address with /api
    start = FakeServer.start  # with `handler` (below); stop() is FakeOpenAI's, which hangs up streams

    def give_away(self, chat_id: str):
        """The chat now belongs to another team: FastGPT refuses it (unAuthChat)."""
        self.chats[chat_id].team = "team-2"

    def delete(self, chat_id: str):
        """Deleted in FastGPT's console: the id starts an empty chat, with no error."""
        del self.chats[chat_id]


class _Handler(_OpenAIHandler):
    fake: FakeFastGPT

    def do_GET(self):
        self._page(404)

    def _answer(self, request):
        fake, body = self.fake, request.body
        if self.path.split("?")[0] != "/api/v1/chat/completions":
            return self._page(404)  # Next.js's own page for a path it has no route for
        stream = isinstance(body, dict) and body.get("stream") is True
        if request.headers.get("authorization") != f"Bearer {fake.api_key}":
            return self._fail(ERRORS["unAuthApiKey"], stream)
        chat_id = body.get("chatId") if isinstance(body, dict) else None
        chat = fake.chats.get(chat_id) if chat_id else None
        if chat is not None and chat.team != fake.team:
            return self._fail(ERRORS["unAuthChat"], stream)
        if fake.mode == "quota":
            return self._fail(ERRORS["insufficientQuota"], stream)
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)] if isinstance(body, dict) else []
        if not messages:
            return self._fail({"message": "messages is empty"}, stream)
        if fake.mode == "server_error":
            return self._fail({"message": THROWN}, stream)
        try:
            request.question, request.images = content_parts(messages[-1].get("content"))
        except ValueError as e:
            return self._fail({"message": f"Invalid image URL: {e}"}, stream)
        request.new_chat = chat is None
        request.histories = (chat.items if chat else []) + [(m["role"], m.get("content")) for m in messages[:-1]]
        request.variables = {**(chat.variables if chat else {}), **(body.get("variables") or {})}
        text = "" if fake.mode == "node_error" else fake.reply(request) if callable(fake.reply) else fake.reply

        def save():  # as saveChat after the workflow, before the answer's last bytes go out
            saved = fake.chats.setdefault(chat_id or secrets.token_urlsafe(18), Chat(chat_id, fake.team))
            saved.items += [("user", request.question), ("assistant", text)]
            saved.variables = request.variables
            saved.uids.add(body.get("customUid"))

        (self._stream if stream else self._complete)(request, text, save)

    def _complete(self, request, text: str, save):
        if self.fake.mode == "slow_first_token":
            self._wait(self.fake.first_token_delay)
        answer = {"id": request.body.get("chatId") or "", "model": "",
                  "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 1},
                  "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop", "index": 0}]}
        if self.fake.mode == "node_error":
            answer["error"] = {"message": NODE_ERROR}
        save()
        self._json(200, answer)

    def _stream(self, request, text: str, save):
        fake, mode = self.fake, self.fake.mode
        pieces = [p for p in fake.chunker(text) if p]

        def chunk(content, finish_reason=None):
            return {"id": "", "object": "", "created": 0, "model": "", "choices": [
                {"delta": {"role": "assistant", "content": content}, "index": 0, "finish_reason": finish_reason}]}

        self._start_chunked("text/event-stream;charset=utf-8")
        if fake.chat_title and request.new_chat:  # named even with detail=false
            self._send(b"event: chatTitle\ndata: " + _compact({"title": str(request.question)[:20]}) + b"\n\n")
        if mode == "slow_first_token":
            self._wait(fake.first_token_delay)
        fault_at = min(fake.fault_after, len(pieces)) if mode in ("stall_mid_stream", "error_mid_stream", "broken") else -1
        for i in range(len(pieces) + 1):
            if i == fault_at and mode == "stall_mid_stream":
                self._wait(fake.stall_seconds, releasable=True)
                if fake._stopping.is_set():
                    return self._drop()
            elif i == fault_at and mode == "error_mid_stream":
                self._send(b"event: error\ndata: " + _compact({"message": THROWN}) + b"\n\n")
                # The stream ends whole and the connection stays open, as FastGPT's does: closed without a
                # word after a complete response, a pooling client's next request on it raced the close
                # (test_the_openai_client_reads_the_fakes_answers failed 1 run in ~6).
                return self._end_chunked()
            elif i == fault_at:
                return self._drop()
            if i == len(pieces):
                break
            if i:
                self._wait(fake.delay_between_chunks)
            self._event(chunk(pieces[i]))
        save()
        self._event(chunk(None, "stop"))
        self._send(b"data: [DONE]\n\n")
        self._end_chunked()

    def _fail(self, error: dict, stream: bool):
        if stream:  # sseErrRes, before the workflow set any header
            self._start_chunked(None)
            self._send(b"event: error\ndata: " + _compact(error) + b"\n\n")
            return self._end_chunked()
        if "statusText" in error:
            return self._json(self.fake.error_status, error)
        self._json(500, {"code": 500, "statusText": "", "message": error["message"], "data": None})

    def _start_chunked(self, content_type: str | None):
        self.send_response(200)
        if content_type:
            self.send_header("Content-Type", content_type)
            self.send_header("X-Accel-Buffering", "no")
            self.send_header("Cache-Control", "no-cache, no-transform")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _event(self, obj):
        self._send(b"data: " + _compact(obj) + b"\n\n")

    def _json(self, status: int, obj):
        data = _compact(obj)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _page(self, status: int):
        page = b"<!DOCTYPE html><html><body><h1>404</h1><p>This page could not be found.</p></body></html>"
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)


FakeFastGPT.handler = _Handler


def _compact(obj) -> bytes:
    """JSON as JavaScript's JSON.stringify writes it: no spaces, UTF-8."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
