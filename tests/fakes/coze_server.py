"""A fake Coze (Chat API v3) for tests: real HTTP on 127.0.0.1, the wire format of api.coze.cn as
coze-py's fixtures and the docs show it (shared/reference/platforms.md §1).

    with FakeCoze(reply="多喝水。") as coze:
        config: {plugin: coze, base_url: coze.url, bot_id: coze.bot_id, api_key: coze.api_key}

- ``POST /v3/chat[?conversation_id=…]``: the conversation id in the QUERY; none starts a new
  conversation. ``stream: false`` answers the Chat at once, ``in_progress`` (the answer does not
  exist yet); ``stream: true`` answers ``text/event-stream``, each event exactly one ``event:`` and
  one ``data:`` line with no space after the colon, ending ``event:done`` / ``data:"[DONE]"``:
  chat.created, chat.in_progress, message.delta (type answer) per piece, message.completed (the
  whole text again), the verbose ``generate_answer_finish`` and a follow_up, chat.completed.
- ``GET|POST /v3/chat/retrieve?conversation_id=&chat_id=`` (the docs say GET, the SDKs POST):
  the Chat, ``completed`` after ``polls`` retrievals and ``answer_seconds``.
- ``GET /v3/chat/message/list?conversation_id=&chat_id=``: the chat's messages without the
  question: answers, verbose, follow_up.
- ``POST /v3/chat/cancel`` ``{conversation_id, chat_id}``: cancels an unfinished chat; 4104 else.
- ``POST /v1/files/upload``: ``multipart/form-data`` with one part named ``file``; answers
  ``{"code": 0, "msg": "", "data": {"id", "bytes", "created_at", "file_name"}}`` (coze-py's test
  fixture) and keeps the file in ``files``; no ``file`` part is 4000.
- A question may be ``content_type: object_string``: its content a JSON string of a list of
  ``{"type": "text", "text"}`` and ``{"type": "image", "file_id" | "file_url"}`` objects (nulls
  for the keys not used are fine, as coze-py sends them); an unknown file_id, or an image with
  neither, is 4000. Each `ChatRequest` keeps the bytes of its images in ``images``.
- Errors are ``{"code": N, "msg": …, "detail": {"logid": …}}`` with HTTP 200 (``error_status``
  changes it), also for a stream request (as JSON, not SSE): 4100 a wrong token, 4006 an unknown
  bot, 4002 an unknown conversation (or one of another bot), 4016 a conversation with a chat
  still running (only one at a time: a chat abandoned without a cancel keeps it busy).
  Every answer carries ``x-tt-logid``.

Bookkeeping: ``conversations`` (id -> `Conversation`: bot, the user_ids that wrote in it, its
chats), ``chats`` (every `Chat` request as received: query, body, headers), ``cancelled``.
``mode`` scripts a failure (see MODES); ``forget(id)`` deletes a conversation as the console does.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from fakes import FakeServer
from fakes.image_parts import multipart

MODES = {
    "ok": "answer",
    "error_body": "refuse POST /v3/chat with error_code (HTTP error_status, JSON body)",
    "error_event": "after fault_after deltas, an `event:error` with {code, msg}, and the end",
    "chat_failed": "after fault_after deltas, conversation.chat.failed with last_error, then done",
    "stall": "after fault_after deltas (not streaming: while in progress), nothing for stall_seconds",
    "broken": "after fault_after deltas, the connection dropped mid-chunk",
    "requires_action": "the bot asks for a tool's output: conversation.chat.requires_action / status",
}

MESSAGES = {4000: "invalid param", 4002: "invalid conversation", 4006: "invalid bot", 4016:
            "There is already a running chat in the current conversation", 4100: "authentication is invalid",
            4101: "permission denied", 4104: "chat can not be canceled", 5000: "internal server error"}

_ids = itertools.count(7382159487131697202)


def new_id() -> str:
    return str(next(_ids))  # decimal strings, as Coze's int64 ids


@dataclass
class Conversation:
    id: str
    bot_id: str
    user_ids: list = field(default_factory=list)  # every user_id that chatted in it, in order
    questions: list = field(default_factory=list)  # every additional message it was sent
    running: str | None = None  # the chat id in progress: a new chat meanwhile is 4016


@dataclass
class ChatRequest:
    method: str
    query: dict
    body: dict
    headers: dict
    chat: dict | None = None  # the Chat it made, if it made one
    images: list = field(default_factory=list)  # the bytes of the images its question showed


class FakeCoze(FakeServer):
    name = "fake-coze"

    def __init__(self, reply="Hello from the bot.", *, mode="ok", bot_id="7348293334", api_key="pat_fake",
                 pieces=2, fault_after=1, stall_seconds=10.0, polls=1, answer_seconds=0.0, error_code=5000,
                 error_status=200):
        self.reply = reply  # text, a list of texts (several answer messages), or a function of the body
        self.mode, self.bot_id, self.api_key = mode, bot_id, api_key
        self.pieces = pieces  # characters per delta
        self.fault_after = fault_after  # deltas before a scripted failure
        self.stall_seconds = stall_seconds
        self.polls, self.answer_seconds = polls, answer_seconds  # not streaming: completed after both
        self.error_code, self.error_status = error_code, error_status
        self.conversations: dict[str, Conversation] = {}
        self.chats: list[ChatRequest] = []
        self.cancelled: list[str] = []  # chat ids
        self.files: dict[str, dict] = {}  # file id -> {"data", "file_name", "content_type"}: what /v1/files/upload kept
        self.url = None
        self._httpd = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._chats: dict[str, dict] = {}  # chat id -> Chat (with its answers under "_answers")

    @property
    def last(self) -> ChatRequest:
        return self.chats[-1]

    def forget(self, conversation_id: str):
        """Delete a conversation, as its owner may in the console: the id becomes invalid (4002)."""
        self.conversations.pop(conversation_id, None)

    def answers(self, body: dict) -> list[str]:
        reply = self.reply(body) if callable(self.reply) else self.reply
        return [reply] if isinstance(reply, str) else list(reply)

    def wait(self, seconds: float):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stopping.is_set():
            time.sleep(0.01)

    def start_chat(self, conversation: Conversation, body: dict, stream: bool) -> dict:
        chat_id = new_id()
        chat = {"id": chat_id, "conversation_id": conversation.id, "bot_id": conversation.bot_id,
                "created_at": int(time.time()), "last_error": {"code": 0, "msg": ""}, "status": "created",
                "usage": {"token_count": 0, "output_count": 0, "input_count": 0}, "section_id": conversation.id,
                "_answers": self.answers(body), "_polls": 0, "_started": time.monotonic()}
        with self._lock:
            self._chats[chat_id] = chat
            conversation.running = chat_id
            conversation.user_ids.append(body.get("user_id"))
            conversation.questions += body.get("additional_messages") or []
        return chat

    def end_chat(self, chat: dict, status: str, error: tuple | None = None):
        with self._lock:
            chat["status"] = status
            chat["completed_at" if status == "completed" else "failed_at"] = int(time.time())
            if error:
                chat["last_error"] = {"code": error[0], "msg": error[1]}
            if status == "completed":
                answers = "".join(chat["_answers"])
                chat["usage"] = {"token_count": 600 + len(answers), "output_count": len(answers), "input_count": 600}
            conversation = self.conversations.get(chat["conversation_id"])
            if conversation is not None and conversation.running == chat["id"]:
                conversation.running = None

    def messages(self, chat: dict) -> list[dict]:
        """The chat's messages, as message/list gives them (and message.completed events)."""
        head = {"conversation_id": chat["conversation_id"], "bot_id": chat["bot_id"], "chat_id": chat["id"],
                "role": "assistant", "content_type": "text", "created_at": chat["created_at"],
                "updated_at": chat["created_at"], "section_id": chat["conversation_id"]}
        answers = [dict(head, id=message_id(chat, i), type="answer", content=text, reasoning_content="")
                   for i, text in enumerate(chat["_answers"])]
        finish = json.dumps({"msg_type": "generate_answer_finish", "data": "", "from_module": None,
                             "from_unit": None})
        return answers + [dict(head, id=new_id(), type="verbose", content=finish),
                          dict(head, id=new_id(), type="follow_up", content="还有什么想问的吗？")]


def _images(messages: list) -> list[str]:
    """The file ids of the images the questions of ``additional_messages`` show (object_string);
    ValueError for an object Coze would refuse."""
    ids = []
    for message in messages:
        if not isinstance(message, dict) or message.get("content_type") != "object_string":
            continue
        objects = json.loads(message.get("content") or "")
        if not isinstance(objects, list) or not objects:
            raise ValueError("object_string content must be a non-empty JSON array")
        for item in objects:
            kind = item.get("type")
            if kind == "text" and not isinstance(item.get("text"), str):
                raise ValueError("a text object needs text")
            if kind in ("image", "file", "audio"):
                if item.get("file_url"):
                    continue  # a public URL: nothing of ours to check
                if not item.get("file_id"):
                    raise ValueError(f"an {kind} object needs file_id or file_url")
                ids.append(item["file_id"])
            elif kind != "text":
                raise ValueError(f"unknown object type {kind!r}")
    return ids


def message_id(chat: dict, i: int) -> str:
    return str(int(chat["id"]) + 1000 + i)


def public(chat: dict) -> dict:
    return {k: v for k, v in chat.items() if not k.startswith("_")}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeCoze

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self._route(b"")

    def do_POST(self):
        self._route(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    # -- routes -----------------------------------------------------------------------------------
    def _route(self, raw: bytes):
        fake = self.fake
        path, _, query = self.path.partition("?")
        query = dict(urllib.parse.parse_qsl(query))
        if path == "/v1/files/upload" and self.command == "POST":
            return self._upload(raw)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return self._error(4000)
        if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
            return self._error(4100)
        if path == "/v3/chat" and self.command == "POST":
            return self._chat(query, body)
        chat = fake._chats.get(query.get("chat_id") or body.get("chat_id") or "")
        if chat is None or chat["conversation_id"] != (query.get("conversation_id") or body.get("conversation_id")):
            return self._error(4001 if path.startswith("/v3/chat/") else 4000, "invalid chat")
        if path == "/v3/chat/retrieve":  # GET (the docs) or POST (coze-py, coze-js)
            chat["_polls"] += 1
            ready = chat["_polls"] >= fake.polls and time.monotonic() - chat["_started"] >= fake.answer_seconds
            if chat["status"] == "in_progress" and ready and fake.mode != "stall":
                if fake.mode == "chat_failed":
                    fake.end_chat(chat, "failed", (5000, "event interval error"))
                elif fake.mode == "requires_action":
                    chat["status"] = "requires_action"
                else:
                    fake.end_chat(chat, "completed")
            return self._json({"code": 0, "msg": "", "data": public(chat)})
        if path == "/v3/chat/message/list" and self.command == "GET":
            return self._json({"code": 0, "msg": "", "data": fake.messages(chat) if chat["status"] == "completed" else []})
        if path == "/v3/chat/cancel" and self.command == "POST":
            if chat["status"] not in ("created", "in_progress"):
                return self._error(4104)
            fake.cancelled.append(chat["id"])
            fake.end_chat(chat, "canceled")
            return self._json({"code": 0, "msg": "", "data": public(chat)})
        self._error(4000, f"The requested API endpoint {self.command} {path} does not exist.")

    def _chat(self, query: dict, body: dict):
        fake = self.fake
        request = ChatRequest(self.command, query, body, {k.lower(): v for k, v in self.headers.items()})
        fake.chats.append(request)
        if fake.mode == "error_body":
            return self._error(fake.error_code)
        if str(body.get("bot_id")) != fake.bot_id:
            return self._error(4006)
        if not body.get("user_id") or not isinstance(body.get("additional_messages"), list):
            return self._error(4000)
        try:
            request.images = [fake.files[file_id]["data"] for file_id in _images(body["additional_messages"])]
        except (KeyError, ValueError, TypeError) as e:
            return self._error(4000, f"invalid param: {e}")
        if body.get("stream") is False and body.get("auto_save_history") is False:
            return self._error(4007, "stream false is allowed only when auto save history is true")
        conversation_id = query.get("conversation_id")
        if conversation_id:
            conversation = fake.conversations.get(conversation_id)
            if conversation is None or conversation.bot_id != fake.bot_id:
                return self._error(4002)
            if conversation.running:
                return self._error(4016)
        else:
            conversation_id = new_id()
            conversation = fake.conversations[conversation_id] = Conversation(conversation_id, fake.bot_id)
        request.chat = chat = fake.start_chat(conversation, body, stream=bool(body.get("stream")))
        if not body.get("stream"):
            chat["status"] = "in_progress"
            return self._json({"code": 0, "msg": "", "data": public(chat)})
        self._stream(chat)

    def _upload(self, raw: bytes):
        if self.headers.get("Authorization") != f"Bearer {self.fake.api_key}":
            return self._error(4100)
        try:
            _, files = multipart(self.headers.get("Content-Type"), raw)
        except ValueError as e:
            return self._error(4000, f"invalid param: {e}")
        upload = next((f for f in files if f["name"] == "file"), None)
        if upload is None:
            return self._error(4000, "invalid param: file is required")
        file_id = new_id()
        self.fake.files[file_id] = {"data": upload["data"], "file_name": upload["filename"],
                                    "content_type": upload["content_type"]}
        self._json({"code": 0, "msg": "", "data": {"id": file_id, "bytes": len(upload["data"]),
                    "created_at": int(time.time()), "file_name": upload["filename"]}})

    def _stream(self, chat: dict):
        fake = self.fake
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-tt-logid", "20260101" + chat["id"])
        self.end_headers()
        self._event("conversation.chat.created", public(chat))
        chat["status"] = "in_progress"
        self._event("conversation.chat.in_progress", public(chat))
        messages = fake.messages(chat)
        sent = 0
        for answer in (m for m in messages if m["type"] == "answer"):
            text = answer["content"]
            for i in range(0, len(text), fake.pieces):
                if sent == fake.fault_after and fake.mode in ("error_event", "chat_failed", "stall", "broken",
                                                              "requires_action"):
                    return self._fault(chat)
                self._event("conversation.message.delta", dict(answer, content=text[i:i + fake.pieces]))
                sent += 1
            self._event("conversation.message.completed", answer)
        if fake.mode != "ok" and sent <= fake.fault_after:
            return self._fault(chat)
        for message in messages:
            if message["type"] != "answer":
                self._event("conversation.message.completed", message)
        fake.end_chat(chat, "completed")
        self._event("conversation.chat.completed", public(chat))
        self._done()

    def _fault(self, chat: dict):
        fake, mode = self.fake, self.fake.mode
        if mode == "error_event":
            fake.end_chat(chat, "failed", (5000, "internal server error"))
            self._chunk(b'event:error\ndata:{"code":5000,"msg":"internal server error"}\n\n')
            return self._end()
        if mode == "chat_failed":
            fake.end_chat(chat, "failed", (5000, "event interval error"))
            self._event("conversation.chat.failed", public(chat))
            return self._done()
        if mode == "requires_action":
            chat["status"] = "requires_action"
            self._event("conversation.chat.requires_action", dict(public(chat), required_action={
                "type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]}}))
            return self._done()
        if mode == "stall":
            fake.wait(fake.stall_seconds)  # the chat stays in progress: only a cancel ends it
        else:  # broken: a chunk promised and cut off
            self.wfile.write(b"40\r\nevent:conversation.message.delta\ndata:{\"id")
            self.wfile.flush()
        self.close_connection = True

    # -- wire -------------------------------------------------------------------------------------
    def _event(self, name: str, data: dict):
        self._chunk(f"event:{name}\ndata:{json.dumps(data, ensure_ascii=False)}\n\n".encode())

    def _done(self):
        self._chunk(b'event:done\ndata:"[DONE]"\n\n')
        self._end()

    def _chunk(self, data: bytes):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _json(self, obj: dict, status: int = 200):
        data = json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-tt-logid", "20260101" + new_id())
        self.end_headers()
        self.wfile.write(data)

    def _error(self, code: int, msg: str | None = None):
        logid = "20260101" + new_id()
        self._json({"code": code, "msg": msg or MESSAGES.get(code, "error"), "detail": {"logid": logid}},
                   self.fake.error_status)


FakeCoze.handler = _Handler
