"""The ``coze`` provider: a bot published on Coze (coze.cn / coze.com) as an API service.

    providers:
      coze: {plugin: coze, base_url: https://api.coze.cn, bot_id: "7348293334", api_key: ${COZE_API_KEY}}

Coze keeps the conversation: each Wellmate session maps to a Coze ``conversation_id`` (kept in the
session's links by `PlatformProvider`), sent in the query string of ``POST /v3/chat``; a turn sends
only the user's new message. The bot's persona is its prompt: Wellmate's system prompt goes only
where ``custom_variables`` put ``$system``. ``/chat`` uses the non-stream API (create, poll,
message list), ``/chat/stream`` the SSE one. Wire format: shared/reference/platforms.md §1.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
import urllib.parse

from wellmate import ConfigError, ProviderError, Setting, hookimpl, json_dumps
from wellmate_plugins import _http
from wellmate_plugins._platform import PlatformProvider

log = logging.getLogger("wellmate.provider_coze")

INVALID_CONVERSATION, BUSY = 4002, 4016  # Coze's codes: no such conversation; a chat still running in it
WHY = {4100: "the token was refused (4100); a coze.cn token does not work on api.coze.com, nor the other way",
       4101: "the token may not use this bot (4101): give it the chat permission for the bot's space",
       4006: "no such bot (4006): check bot_id", 4015: "the bot is not published as an API service (4015)",
       BUSY: "the conversation still has a reply in progress (4016)"}
RUNNING = ("created", "in_progress")


@hookimpl
def register_providers(register):
    register("coze", CozeProvider)


class CozeError(ProviderError):
    def __init__(self, message: str, code: int | None = None, retryable: bool = True):
        super().__init__(message, retryable)
        self.code = code


class CozeProvider(PlatformProvider):
    settings = {
        "base_url": Setting("https://api.coze.cn", "https://api.coze.cn (China) or https://api.coze.com; a token "
                                                    "works only on its own site."),
        "bot_id": Setting(None, "The bot's id: the digits after /bot/ in its address in the Coze console.",
                          required=True),
        "api_key": Setting(None, "A personal access token (pat_...) with chat permission.", required=True),
        "timeout": Setting(60.0, "Seconds to wait for the whole answer (/chat), or between pieces of a "
                                 "streamed one.", float, min=0.1),
        "custom_variables": Setting({}, "The bot's prompt variables, filled from $placeholders (and $system: "
                                        "Wellmate's system prompt), e.g. {name: $name}.", dict),
    }

    @classmethod
    def check_config(cls, config: dict, where: str) -> dict:
        config = super().check_config(config, where)
        if not config["bot_id"].isdigit():
            raise ConfigError(f"{where}.bot_id: must be the bot's digits (from its address in the Coze console, "
                              f"after /bot/), got {json_dumps(config['bot_id'])}")
        return config

    def bot(self) -> str:
        return f"{self.config['base_url']} {self.config['bot_id']}"

    def reply(self, messages: list[dict], turn=None) -> str:
        deadline = time.monotonic() + self.config["timeout"]
        chat = self._start(turn, messages, lambda conversation, body: self._call(
            "POST", "/v3/chat", {"conversation_id": conversation}, {**body, "stream": False}))
        self._keep(turn, chat)
        ids, delay = {"conversation_id": chat["conversation_id"], "chat_id": chat["id"]}, 0.1
        # Polled at 0.1 s, doubling to 1 s (coze-py's pace): a short answer is back in ~0.1 s.
        while chat.get("status") in RUNNING:
            if time.monotonic() + delay > deadline:
                self._cancel(ids)
                raise CozeError(f"{self.name}: no answer within {self.config['timeout']:g} s (timeout)")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
            chat = self._call("GET", "/v3/chat/retrieve", ids, timeout=max(deadline - time.monotonic(), 0.1))
        if chat.get("status") != "completed":
            raise self._ended(chat)
        answers = [m.get("content") for m in self._call("GET", "/v3/chat/message/list", ids) or []
                   if m.get("role") == "assistant" and m.get("type") == "answer" and m.get("content_type") == "text"]
        text = "\n\n".join(a for a in answers if a)
        if not text:
            raise CozeError(f"{self.name}: the reply was empty")
        return text

    def stream(self, messages: list[dict], turn=None):
        first, events = self._start(turn, messages, self._open)
        sent, answer_id, chat, done = False, None, {}, False
        try:
            for event in itertools.chain([first] if first else [], events):
                if event.event == "done":
                    done = True
                    break
                data = event.json()
                if event.event == "error":
                    chat = {}  # it has ended: nothing to cancel
                    raise CozeError(f"{self.name}: Coze reported an error: {data.get('msg')} ({data.get('code')})",
                                    data.get("code"), retryable=not sent)
                if event.event.startswith("conversation.chat."):
                    chat = data
                    self._keep(turn, chat)
                    if chat.get("status") not in (*RUNNING, "completed"):
                        raise self._ended(chat, midway=sent)
                elif event.event == "conversation.message.delta" and data.get("type") == "answer" and data.get("content"):
                    # Only answer deltas are the reply; message.completed repeats the text whole.
                    if answer_id not in (None, data.get("id")):
                        yield "\n\n"  # the bot's next answer message
                    answer_id, sent = data.get("id"), True
                    yield data["content"]
        except _http.HttpError as e:
            raise CozeError(f"{self.name}: {e}", retryable=not sent) from None
        finally:
            events.close()  # also when our client went away: hang up, and cancel what still runs
            if not done and chat.get("status") in RUNNING:
                self._cancel({"conversation_id": chat["conversation_id"], "chat_id": chat["id"]})
        if not done:
            raise CozeError(f"{self.name}: the stream ended without its done event", retryable=not sent)
        if not sent:
            raise CozeError(f"{self.name}: the reply was empty")

    # -- the conversation -------------------------------------------------------------------------
    def _start(self, turn, messages: list[dict], send):
        """``send(conversation_id, body)`` in the session's conversation; one that Coze no longer
        knows (deleted in the console) is forgotten, and a new one starts with recent history."""
        conversation = self.conversation(turn)
        try:
            return send(conversation, self._body(turn, messages, history=conversation is None))
        except CozeError as e:
            if conversation is None or e.code != INVALID_CONVERSATION:
                raise
        log.info("%s: Coze no longer knows conversation %s; starting a new one", self.name, conversation)
        self.remember(turn, None)
        return send(None, self._body(turn, messages, history=True))

    def _keep(self, turn, chat: dict):
        if turn is not None and chat.get("conversation_id") and chat["conversation_id"] != self.conversation(turn):
            self.remember(turn, chat["conversation_id"])

    def _body(self, turn, messages: list[dict], history: bool) -> dict:
        said = (self.recent(messages) if history else []) + [{"role": "user", "content": self.last_user_text(messages)}]
        body = {"bot_id": self.config["bot_id"], "user_id": self.user_field(turn), "auto_save_history": True,
                "additional_messages": [{"role": m["role"], "type": "question" if m["role"] == "user" else "answer",
                                         "content": m["content"], "content_type": "text"}
                                        for m in said if m.get("content")]}
        variables = self.fill(self.config["custom_variables"], turn, messages)
        return {**body, "custom_variables": variables} if variables else body

    # -- the wire ---------------------------------------------------------------------------------
    def _open(self, conversation: str | None, body: dict):
        """(the first event, the stream): the first is read here, so a refusal (JSON, not SSE)
        is raised while a rejected conversation can still be replaced."""
        events = _http.events("POST", self._url("/v3/chat", {"conversation_id": conversation}), {**body, "stream": True},
                              self._headers(), self.config["timeout"])
        try:
            return next(events, None), events
        except _http.HttpError as e:
            self._answer(e.status, e.body, str(e))  # raises Coze's error, if it is one
            raise CozeError(f"{self.name}: {e}") from None

    def _call(self, method: str, path: str, query: dict, body: dict | None = None, timeout: float | None = None):
        try:
            answer = _http.request(method, self._url(path, query), body, self._headers(),
                                   timeout or self.config["timeout"])
        except _http.HttpError as e:
            raise CozeError(f"{self.name}: {e}") from None
        return self._answer(answer.status, answer.body, f"{answer.host} did not answer like Coze's API "
                                                        f"(HTTP {answer.status}); check base_url").get("data")

    def _answer(self, status: int | None, body: bytes, otherwise: str) -> dict:
        """A Coze answer's JSON object; CozeError for the error it holds whatever its HTTP status
        (Coze answers most with 200), or saying ``otherwise`` when it is not Coze's JSON."""
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("code"), int):
            raise CozeError(f"{self.name}: {otherwise}")
        if answer["code"] != 0:
            code = answer["code"]
            raise CozeError(f"{self.name}: {WHY.get(code) or f'Coze answered code {code}'}: {answer.get('msg')}", code)
        return answer

    def _ended(self, chat: dict, midway: bool = False) -> CozeError:
        if chat.get("status") == "requires_action":
            return CozeError(f"{self.name}: the bot asked for a tool's output (a client-side plugin), which "
                             f"Wellmate cannot give", retryable=not midway)
        error = chat.get("last_error") or {}
        return CozeError(f"{self.name}: the chat {chat.get('status')}: {error.get('msg')} ({error.get('code')})",
                         error.get("code"), retryable=not midway)

    def _cancel(self, ids: dict):
        """Cancel a chat we stopped waiting for: while it runs, its conversation refuses the next (4016)."""
        try:
            self._call("POST", "/v3/chat/cancel", {}, ids, timeout=min(self.config["timeout"], 5.0))
        except CozeError as e:
            log.info("%s: cancelling chat %s: %s", self.name, ids["chat_id"], e)

    def _url(self, path: str, query: dict) -> str:
        query = urllib.parse.urlencode({k: v for k, v in query.items() if v})
        return f"{self.config['base_url']}{path}" + (f"?{query}" if query else "")

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.config['api_key']}"}
