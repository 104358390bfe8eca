"""The ``coze`` provider: a Coze bot published as an API service (docs/platforms.md#coze).

A Wellmate session is one Coze conversation (its id in the session's links, sent in the query of
``POST /v3/chat``); a turn sends only the user's new message. ``/chat`` uses the non-stream API
(create, poll, list the messages), ``/chat/stream`` the SSE one.
"""

from __future__ import annotations

import time

from wellmate import ConfigError, Setting, hookimpl, json_dumps
from wellmate_plugins._platform import PlatformError, PlatformProvider, json_event, json_object, upload

REJECTED = (4002,)  # Coze no longer knows the conversation (deleted in the console): "invalid conversation"
WHY = {4100: "the token was refused (4100; a coze.cn token does not work on api.coze.com, nor the other way)",
       4015: "the bot is not published as an API service (4015)"}
RUNNING = ("created", "in_progress")


@hookimpl
def register_providers(register):
    register("coze", CozeProvider)


class CozeProvider(PlatformProvider):
    settings = {
        "base_url": Setting("https://api.coze.cn", "https://api.coze.cn (China) or https://api.coze.com: a token "
                                                    "works only on its own site."),
        "bot_id": Setting(None, "The bot's id: the digits after /bot/ in its address in the Coze console.",
                          required=True),
        "api_key": Setting(None, "A personal access token (pat_...) allowed to chat.", required=True),
        "timeout": Setting(60.0, "Seconds to wait for the whole answer (/chat), or between pieces of a "
                                 "streamed one.", float, min=0.1),
        "custom_variables": Setting({}, "The bot's prompt variables, filled from $placeholders (and $system: "
                                        "Wellmate's system prompt), e.g. {name: $name}.", dict),
        "vision": Setting(False, "The bot's model can see images: it may be in an agent's vision_providers; "
                                 "images go through Coze's file API.", bool),
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
        started = time.monotonic()
        chat = self.once_in_conversation(turn, lambda conversation: self._call(
            "POST", self.url("/v3/chat", conversation_id=conversation), self._body(turn, messages, conversation, False)),
            REJECTED)
        self.remember(turn, chat["conversation_id"])
        ids = {"conversation_id": chat["conversation_id"], "chat_id": chat["id"]}
        chat = self.poll(chat, lambda left: self._call("GET", self.url("/v3/chat/retrieve", **ids), timeout=left),
                         lambda chat: chat.get("status") in RUNNING, started)
        if chat.get("status") != "completed":
            raise self._ended(chat)
        listed = self._call("GET", self.url("/v3/chat/message/list", **ids), chat=False)
        text = "\n\n".join(m["content"] for m in listed if _is_answer(m)) if isinstance(listed, list) else ""
        if not text:
            raise self.empty()
        return text

    def stream(self, messages: list[dict], turn=None):
        chat, answer_id = {}, None  # the chat as Coze last told it (cancelled if we leave it running)

        def read(event, sent):
            nonlocal chat, answer_id
            if event.event == "done":
                return None
            data = json_event(event)
            if event.event == "error":
                chat = {}  # it has ended: nothing to cancel
                raise PlatformError(f"{self.name}: Coze reported an error: {data.get('msg')} ({data.get('code')})",
                                    data.get("code"))
            if event.event.startswith("conversation.chat."):
                chat = data
                self.keep(turn, chat)
                if chat.get("status") not in (*RUNNING, "completed"):
                    raise self._ended(chat)
            elif event.event == "conversation.message.delta" and _is_answer(data):
                # Only answer deltas are the reply: message.completed repeats the text whole.
                apart = answer_id not in (None, data.get("id"))  # the bot's next answer message
                answer_id = data.get("id")
                return ["\n\n", data["content"]] if apart else [data["content"]]
            return []
        try:
            yield from self.in_conversation(turn, lambda conversation: self.relay(self.url(
                "/v3/chat", conversation_id=conversation), self._body(turn, messages, conversation, True), read, "done"),
                REJECTED)
        finally:  # also when our client went away: cancel what still runs
            if chat.get("status") in RUNNING:
                self.give_up(chat)

    def _body(self, turn, messages: list[dict], conversation: str | None, stream: bool) -> dict:
        asked = [{"role": m["role"], "type": "question" if m["role"] == "user" else "answer", "content": m["content"],
                  "content_type": "text"} for m in self.to_send(messages, not conversation) if m["content"]]
        if turn is not None and turn.attachments:  # images: by the ids Coze's file API gives them (uploaded now)
            shown = [{"type": "text", "text": asked[-1]["content"]}] + [{"type": "image", "file_id": upload(
                self, self.url("/v1/files/upload"), image, lambda answer: (answer.get("data") or {}).get("id"))}
                for image in turn.attachments]
            asked[-1].update(content_type="object_string", content=json_dumps(shown))  # a JSON list in a string
        body = {"bot_id": self.config["bot_id"], "user_id": self.user_field(turn), "stream": stream,
                "auto_save_history": True,  # else Coze keeps no history (and /chat cannot poll)
                "additional_messages": asked}
        variables = self.fill(self.config["custom_variables"], turn, messages)
        return {**body, "custom_variables": variables} if variables else body

    def _call(self, method: str, url: str, body: dict | None = None, timeout: float | None = None, chat=True):
        """The ``data`` of Coze's answer: a Chat (checked), or with ``chat=False`` whatever it is.
        Coze answers most errors with HTTP 200: its ``code`` says."""
        response = self.request(method, url, body, timeout)
        answer = json_object(response.body)
        if answer is None or not isinstance(answer.get("code"), int):
            raise PlatformError(f"{self.name}: {response.host} did not answer like Coze (HTTP {response.status}); "
                                f"check base_url")
        if answer["code"]:
            raise self.refused(answer)
        data = answer.get("data")
        if chat and not (isinstance(data, dict) and data.get("id") and data.get("conversation_id")):
            raise PlatformError(f"{self.name}: Coze's answer holds no chat: {json_dumps(data)[:200]}")
        return data

    def refused(self, answer: dict | None, status: int | None = None) -> PlatformError | None:
        code = (answer or {}).get("code")
        if not isinstance(code, int) or not code:
            return None
        return PlatformError(f"{self.name}: {WHY.get(code) or f'Coze answered code {code}'}: {answer.get('msg')}", code)

    def _ended(self, chat: dict) -> PlatformError:
        error = chat.get("last_error") or {}
        why = f"the chat {chat.get('status')}: {error.get('msg')} ({error.get('code')})"
        if chat.get("status") == "requires_action":
            why = "the bot asked for a tool's output, which Wellmate cannot give"
        return PlatformError(f"{self.name}: {why}", error.get("code"))

    def stop(self, chat: dict):
        """Cancel a chat no one waits for: while it runs, its conversation refuses the next (4016)."""
        self._call("POST", self.url("/v3/chat/cancel"), {"conversation_id": chat.get("conversation_id"),
                   "chat_id": chat.get("id")}, timeout=min(self.config["timeout"], 5.0), chat=False)


def _is_answer(message) -> bool:
    """Text of the bot's reply: not a follow-up suggestion, a tool call or a verbose notice."""
    return isinstance(message, dict) and message.get("type") == "answer" and isinstance(message.get("content"), str) \
        and message.get("content_type", "text") == "text" and bool(message["content"])
