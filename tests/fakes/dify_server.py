"""A fake Dify Service API for tests: real HTTP on 127.0.0.1, the wire format of a Dify app's
``POST /v1/chat-messages`` (shared/reference/platforms.md §3).

    with FakeDify(reply="多喝水，早点睡。") as dify:
        providers: {dify: {plugin: dify, base_url: dify.url, api_key: dify.api_key}}
        ...
        dify.last.body["query"], dify.conversations[conversation_id]["queries"]

What it speaks, as Dify does:

- Auth: ``Authorization: Bearer <app key>``; none, or another scheme, or another key: HTTP 401.
- Errors before an answer: ``{"code": "<code>", "message": "<text>", "status": <status>}`` with that
  HTTP status (404 ``not_found`` "Conversation Not Exists.", 400 ``invalid_param``, 401
  ``unauthorized``, 429 ``too_many_requests``, 500 ``internal_server_error``, ...).
- Conversations: a request without ``conversation_id`` (or with "") starts one (a uuid4); one
  that names a conversation Dify does not have, or one of another ``user``, gets a 404. A
  conversation keeps the ``inputs`` of its first message (Dify ignores later ones).
- ``response_mode: blocking``: one JSON answer. ``streaming``: ``text/event-stream``, chunked,
  each event one ``data: {json}`` line and a blank line (Python's json.dumps: ``", "`` and
  ``": "`` separators, non-ASCII as ``\\uXXXX``); a keep-alive is ``event: ping`` with no data;
  no ``[DONE]``: ``message_end`` ends the answer. ``app`` picks what events carry it:
  ``chatbot`` (message...), ``agent`` (agent_thought, agent_message..., refuses blocking with
  400 invalid_param), ``new-agent`` (agent_message..., then one ``message`` repeating the whole
  answer), ``chatflow`` (workflow_started, node_started, message..., message_end,
  workflow_finished last). An error in a stream is ``{"event": "error", ...}`` with HTTP 200.

- ``POST /v1/files/upload``: ``multipart/form-data``, exactly one part ``file`` (its filename
  without ``/`` or ``\\``, a Content-Type declared) and a text part ``user`` (none: ``DEFAULT-USER``);
  201 with Dify's whole file object; 400 ``no_file_uploaded`` / ``too_many_files`` /
  ``filename_not_exists_error``, 413 ``file_too_large`` (message "", as Dify's), 415
  ``unsupported_file_type``. Kept in ``files`` (id -> user, data, mime_type, name).
- ``files`` of a chat message: ``{"type": "image", "transfer_method": "local_file",
  "upload_file_id"}`` naming a file the same ``user`` uploaded (else 404 ``not_found``), or
  ``remote_url`` with ``url``; ``vision = False`` (the app's image upload switched off) refuses
  any with 400 ``invalid_param``. Each request keeps the bytes of its images in ``images``.

``mode`` scripts what goes wrong (MODES); every option may be changed between requests.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

from fakes import FakeServer, openai_server
from fakes.image_parts import image_kind, multipart
from fakes.openai_server import Request, words

MODES = {
    "ok": "answer normally",
    "error_before_text": "a model error before any text: 400 completion_request_error (blocking), "
                         "or an error event first in a 200 stream",
    "error_mid_stream": "fault_after pieces, then an error event (internal_server_error), end",
    "stall": "send nothing (no pings either) for stall_seconds, before the answer starts",
    "stall_mid_stream": "fault_after pieces, then nothing for stall_seconds",
    "broken": "fault_after pieces, then drop the connection mid-body",
    "no_end": "every piece, then end the stream cleanly without message_end",
    "replace": "fault_after pieces, then message_replace with `replacement` (output moderation)",
    "429": "too many requests", "500": "internal server error",
    "quota": "400 provider_quota_exceeded",
}
APPS = {"chatbot": "chat", "agent": "agent-chat", "new-agent": "agent-chat", "chatflow": "advanced-chat"}
NO_CONVERSATION = (404, "not_found", "Conversation Not Exists.")
IMAGE_LIMIT = 10 * 1024 * 1024  # UPLOAD_IMAGE_FILE_SIZE_LIMIT's default: 10 MB


class FakeDify(FakeServer):
    name, url_path = "fake-dify", "/v1"

    def __init__(self, reply="Hello! How can I help you today?", mode="ok", *, app="chatbot", chunker=words,
                 api_key="app-fake0123456789", fault_after=2, stall_seconds=30.0, pings=False,
                 replacement="Sorry, I can't talk about that."):
        self.reply = reply  # text, or a function of the Request returning text
        self.mode, self.app, self.chunker, self.api_key = mode, app, chunker, api_key
        self.fault_after, self.stall_seconds, self.pings = fault_after, stall_seconds, pings
        self.replacement = replacement
        self.requests: list[Request] = []
        # conversation id -> {"user", "inputs" (the first message's), "queries", "ended"}
        self.conversations: dict[str, dict] = {}
        self.files: dict[str, dict] = {}  # upload id -> {"user", "data", "mime_type", "name"}: /files/upload's
        self.vision = True  # the app accepts images (its "vision" / file upload feature is on)
        self.url = None
        self._httpd = None
        self._stopping = threading.Event()
        # What the OpenAI fake's handler, whose wire helpers this one uses, reads.
        self.fragment, self._release, self._lock, self._live = None, threading.Event(), threading.Lock(), {}

    @property
    def last(self) -> Request:
        return self.requests[-1]

    def forget(self):
        """Lose every conversation (deleted in Dify's console, or another app behind the key)."""
        self.conversations.clear()

    def end(self, conversation_id: str):
        """Mark a conversation ended: Dify refuses new messages in it (400 conversation_completed)."""
        self.conversations[conversation_id]["ended"] = True

    def of_user(self, user: str) -> list[str]:
        return [cid for cid, c in self.conversations.items() if c["user"] == user]


class _Handler(openai_server._Handler):
    """The OpenAI fake's handler (its request log, chunked writes, hang-up detection), answering as Dify."""

    fake: FakeDify

    def do_GET(self):
        self._refuse(404, "not_found", "The requested URL was not found on the server.")

    def do_POST(self):
        if self.path.split("?")[0] != "/v1/files/upload":
            return super().do_POST()
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Authorization") != f"Bearer {self.fake.api_key}":
            return self._refuse(401, "unauthorized", "Access token is invalid")
        try:
            fields, files = multipart(self.headers.get("Content-Type"), raw)
        except ValueError:
            return self._refuse(400, "no_file_uploaded", "Please upload your file.")
        if not files:
            return self._refuse(400, "no_file_uploaded", "Please upload your file.")
        if len(files) > 1:
            return self._refuse(400, "too_many_files", "Only one file is allowed.")
        upload = files[0]
        if upload["name"] != "file" or not upload["filename"] or "/" in upload["filename"] or "\\" in upload["filename"]:
            return self._refuse(400, "filename_not_exists_error", "The specified filename does not exist.")
        if not upload["content_type"] or image_kind(upload["data"]) is None:
            return self._refuse(415, "unsupported_file_type", "File type not allowed.")
        if len(upload["data"]) > IMAGE_LIMIT:
            return self._refuse(413, "file_too_large", "")
        file_id, user = str(uuid.uuid4()), fields.get("user") or "DEFAULT-USER"
        self.fake.files[file_id] = {"user": user, "data": upload["data"], "mime_type": upload["content_type"],
                                    "name": upload["filename"]}
        extension = upload["filename"].rsplit(".", 1)[-1] if "." in upload["filename"] else ""
        self._json(201, {"id": file_id, "name": upload["filename"], "size": len(upload["data"]), "extension": extension,
                         "mime_type": upload["content_type"], "created_by": str(uuid.uuid5(uuid.NAMESPACE_OID, user)),
                         "created_at": int(time.time()), "preview_url": None,
                         "source_url": f"{self.fake.url}/files/{file_id}/file-preview?timestamp=1&nonce=x&sign=y",
                         "original_url": None, "user_id": None, "tenant_id": "tenant-fake", "conversation_id": None,
                         "file_key": None, "reference": None})

    # -- the request, checked as Dify checks it ---------------------------------------------------
    def _answer(self, request: Request):
        fake, body = self.fake, request.body
        if self.path.split("?")[0] != "/v1/chat-messages":
            return self._refuse(404, "not_found", "The requested URL was not found on the server.")
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return self._refuse(401, "unauthorized", "Authorization header must be provided and start with 'Bearer'")
        if auth != f"Bearer {fake.api_key}":
            return self._refuse(401, "unauthorized", "Access token is invalid")
        if not isinstance(body, dict):
            return self._refuse(400, "bad_request", "The browser (or proxy) sent a request that this server "
                                                   "could not understand.")
        for key, kind in (("inputs", dict), ("query", str), ("user", str)):
            if not isinstance(body.get(key), kind):
                return self._refuse(400, "invalid_param", f"{key} is required" if key not in body else f"{key} is invalid")
        if not body["query"]:
            return self._refuse(400, "invalid_param", "query is required")
        if body.get("files") is not None and not isinstance(body["files"], list):  # the SDK sends null
            return self._refuse(400, "invalid_param", "files is invalid")
        refused = self._files(request)
        if refused:
            return self._refuse(*refused)
        streaming = body.get("response_mode") == "streaming"
        if body.get("response_mode", "blocking") not in ("blocking", "streaming"):
            return self._refuse(400, "invalid_param", "response_mode is invalid")
        if fake.app == "agent" and not streaming:
            return self._refuse(400, "invalid_param", "Agent Chat App does not support blocking mode")
        if fake.mode in ("429", "500", "quota"):
            return self._refuse(*{"429": (429, "too_many_requests", "Too many requests. Please try again later."),
                                 "500": (500, "internal_server_error", "Internal Server Error, please contact support."),
                                 "quota": (400, "provider_quota_exceeded", "Your quota for Dify Hosted Model "
                                           "Provider has been exhausted.")}[fake.mode])
        conversation_id = body.get("conversation_id") or ""
        with fake._lock:
            if conversation_id:
                try:
                    uuid.UUID(conversation_id)
                except ValueError:
                    return self._refuse(400, "invalid_param", f"{conversation_id} is not a valid uuid.")
                conversation = fake.conversations.get(conversation_id)
                if conversation is None or conversation["user"] != body["user"]:
                    return self._refuse(*NO_CONVERSATION)
                if conversation["ended"]:
                    return self._refuse(400, "conversation_completed",
                                       "The conversation has ended. Please start a new conversation.")
            else:
                conversation_id = str(uuid.uuid4())
                fake.conversations[conversation_id] = conversation = {
                    "user": body["user"], "inputs": dict(body["inputs"]), "queries": [], "ended": False}
            conversation["queries"].append(body["query"])
        head = {"conversation_id": conversation_id, "message_id": str(uuid.uuid4()), "created_at": int(time.time()),
                "task_id": str(uuid.uuid4())}
        head["id"] = head["message_id"]
        text = fake.reply(request) if callable(fake.reply) else fake.reply
        if streaming:
            self._stream(head, text)
        elif fake.mode == "error_before_text":
            self._refuse(400, "completion_request_error", "[openai] Rate Limit Error: quota exceeded")
        else:
            if fake.mode == "stall":
                self._wait(fake.stall_seconds)
            self._json(200, {"event": "message", **head, "mode": APPS[fake.app], "answer": text,
                             "metadata": {"usage": _usage(text), "retriever_resources": []}})

    def _files(self, request: Request):
        """Dify's checks of a message's ``files``: None when they pass (their images kept), else
        (status, code, message)."""
        fake, files = self.fake, request.body.get("files") or []
        if files and not fake.vision:
            return 400, "invalid_param", "File upload is not enabled for this app."
        for item in files:
            if not isinstance(item, dict) or item.get("type") not in ("image", "document", "audio", "video", "custom"):
                return 400, "invalid_param", "files is invalid"
            if item.get("transfer_method") == "local_file":
                kept = fake.files.get(item.get("upload_file_id") or "")
                if kept is None or kept["user"] != request.body["user"]:
                    return 404, "not_found", "File not found."
                request.images.append(kept["data"])
            elif item.get("transfer_method") != "remote_url" or not item.get("url"):
                return 400, "invalid_param", "transfer_method is invalid"
        return None

    # -- a stream ----------------------------------------------------------------------------------
    def _stream(self, head: dict, text: str):
        fake, mode, app = self.fake, self.fake.mode, self.fake.app
        pieces = [p for p in fake.chunker(text) if p]
        self._start_chunked("text/event-stream; charset=utf-8")
        run = {"workflow_run_id": str(uuid.uuid4())}
        if app == "chatflow":
            self._event(dict(head, event="workflow_started", **run, data={"id": run["workflow_run_id"], "sequence_number": 1}))
            self._event(dict(head, event="node_started", **run, data={"node_id": "llm", "node_type": "llm", "title": "LLM"}))
        if app in ("agent", "new-agent"):
            self._event(dict(head, event="agent_thought", position=1, thought="", observation="", tool="",
                             tool_input="", message_files=[]))
        if mode == "stall":
            self._wait(fake.stall_seconds)
        if mode == "error_before_text":
            return self._fail(head, 400, "completion_request_error", "[openai] Rate Limit Error: quota exceeded")
        kind = "agent_message" if app in ("agent", "new-agent") else "message"
        for i, piece in enumerate(pieces):
            if i == fake.fault_after and mode in ("error_mid_stream", "stall_mid_stream", "broken", "replace"):
                if mode == "error_mid_stream":
                    return self._fail(head, 500, "internal_server_error", "Internal Server Error, please contact support.")
                if mode == "replace":
                    self._event(dict(head, event="message_replace", answer=fake.replacement))
                    break
                if mode == "stall_mid_stream":
                    self._wait(fake.stall_seconds)
                return self._drop()
            if fake.pings:
                self._send(b"event: ping\n\n")
            self._event(dict(head, event=kind, answer=piece, **({"from_variable_selector": None} if kind == "message" else {})))
        if mode == "no_end":
            return self._end_chunked()
        if app == "new-agent":  # the closing message repeats the whole answer
            self._event(dict(head, event="message", answer=text))
        self._event(dict(head, event="message_end", metadata={"usage": _usage(text), "retriever_resources": []},
                         files=None))
        if app == "chatflow":
            self._event(dict(head, event="workflow_finished", **run, data={"status": "succeeded", "outputs": {"answer": text}}))
        self._end_chunked()

    def _fail(self, head: dict, status: int, code: str, message: str):
        """An error in a stream, as Dify ends one: a chatflow's failed run first, then the error (no task_id)."""
        if self.fake.app == "chatflow":
            self._event(dict(head, event="workflow_finished", data={"status": "failed", "error": message}))
        self._event({"event": "error", "conversation_id": head["conversation_id"], "message_id": head["message_id"],
                     "created_at": head["created_at"], "code": code, "status": status, "message": message})
        self._end_chunked()

    # -- wire --------------------------------------------------------------------------------------
    def _refuse(self, status: int, code: str, message: str):
        self._json(status, {"code": code, "message": message, "status": status})

    def _event(self, obj: dict):
        self._send(b"data: " + json.dumps(obj).encode() + b"\n\n")  # json.dumps' defaults, as Dify's


def _usage(text: str) -> dict:
    return {"prompt_tokens": 20, "completion_tokens": len(words(text)), "total_tokens": 20 + len(words(text)),
            "total_price": "0.0000000", "currency": "USD", "latency": 0.5}


FakeDify.handler = _Handler
