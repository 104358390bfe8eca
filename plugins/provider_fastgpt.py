"""The ``fastgpt`` provider: an app on FastGPT, which keeps each conversation (docs/platforms.md).

It calls ``{base_url}/v1/chat/completions`` with ``detail: false`` (OpenAI-shaped chunks and
``[DONE]``) and a ``chatId`` it makes for each session, so a turn sends only the new message.
FastGPT puts its errors in the body: ``{"code": 514, "statusText": "unAuthApiKey", ...}`` with
status 200 (500 in newer versions), and ``event: error`` in a stream, a bad key's too.
"""

from __future__ import annotations

import hashlib
import uuid

from wellmate import ProviderError, Setting, hookimpl
from wellmate_plugins._platform import PlatformError, PlatformProvider, json_object, with_images

# FastGPT's statusText for the errors worth naming in plain words (ERROR_RESPONSE in its source).
REFUSALS = {
    "unAuthApiKey": "the API key was refused; an app's own key is needed",
    "insufficientQuota": "the FastGPT team is out of points",
    "unAuthChat": "FastGPT refused the conversation",
}
REJECTED = ("unAuthChat",)  # a chatId FastGPT refuses (another team's chat): a new chat is started


@hookimpl
def register_providers(register):
    register("fastgpt", FastGPTProvider)


class FastGPTProvider(PlatformProvider):
    settings = {
        "base_url": Setting(None, "FastGPT's API address, ending in /api: http://127.0.0.1:3000/api "
                                  "(self-hosted) or https://api.fastgpt.in/api.", required=True),
        "api_key": Setting(None, "The app's API key (fastgpt-...), made on the app's API access page; "
                                 "an account-wide key cannot chat.", required=True),
        "timeout": Setting(60.0, "Seconds to wait for FastGPT: for an answer to start, and between "
                                 "pieces of a streamed one.", float, min=0.1),
        "variables": Setting({}, "The app's global variables, name: text; the text may use $placeholders "
                                 "($name, $age, $today, ..., $system: Wellmate's system prompt).", dict),
        "vision": Setting(False, "The app's model can see images: it may be in an agent's vision_providers; "
                                 "images go as image_url parts with data: URLs.", bool),
    }

    def __init__(self, name: str, config: dict, wm):
        super().__init__(name, config, wm)
        base = self.config["base_url"]  # "/api" as FastGPT's docs write it; "/api/v1" works too
        self.endpoint = base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")

    def bot(self) -> str:
        # A key is one app's, and FastGPT looks chatIds up in it: another key's chats are not continued.
        return f"{self.endpoint}#{hashlib.sha256(self.config['api_key'].encode()).hexdigest()[:12]}"

    def reply(self, messages: list[dict], turn=None) -> str:
        return "".join(self._in_chat(turn, lambda chat, new: [self._complete(self._body(messages, turn, chat, new))]))

    def stream(self, messages: list[dict], turn=None):
        return self._in_chat(turn, lambda chat, new: self.relay(
            self.endpoint, self._body(messages, turn, chat, new, stream=True), self._read, "[DONE]"))

    def _in_chat(self, turn, ask):
        """What ``ask(chat_id, new)`` yields in the session's chat. FastGPT hands out no chatId: a
        new chat gets one we make. A turn that is not a user's (turn None) has no chat."""
        def asked(chat_id):
            new = chat_id is None
            chat_id = "wellmate-" + uuid.uuid4().hex if new and turn is not None else chat_id
            yield from ask(chat_id, new)
            if new:  # only now: FastGPT saves a chat when its answer is complete
                self.remember(turn, chat_id)
        return self.in_conversation(turn, asked, REJECTED)

    def _body(self, messages, turn, chat_id, new, stream=False) -> dict:
        # A new chat gets the session's recent history: FastGPT puts the messages before the last
        # after the history it has for the chatId (none yet), and answers the last.
        body = {"stream": stream, "detail": False, "variables": self.fill(self.config["variables"], turn, messages),
                "messages": self.to_send(with_images(messages, turn), new)}
        if chat_id is not None:
            body.update(chatId=chat_id, customUid=self.user_field(turn), responseChatItemId=turn.message_id or None)
        return {k: v for k, v in body.items() if v is not None}

    def _complete(self, body: dict) -> str:
        response = self.request("POST", self.endpoint, body)
        answer = json_object(response.body)
        if not 200 <= response.status < 300 or answer is None or "choices" not in answer:
            raise self._refusal(answer, response.status)
        choices = answer["choices"] or [{}]
        text = (choices[0].get("message") or {}).get("content")
        if isinstance(text, str) and text:
            return text
        why = _words(answer.get("error"))  # the workflow's last node failed: no text, status 200
        if why:
            raise ProviderError(f"{self.name}: the app's workflow failed: {why}")
        raise self.empty()

    def _read(self, event, sent: bool):
        if event.data.startswith("[DONE]"):
            return None
        data = json_object(event.data)
        if event.event == "error":
            raise self._refusal(data if data is not None else {"message": event.data}, midway=sent)
        # Anything else without choices (newer versions' "event: chatTitle") is not text; the
        # closing chunk's content is null.
        return [(choice.get("delta") or {}).get("content") for choice in (data or {}).get("choices") or []]

    def refused(self, answer: dict | None, status: int | None) -> PlatformError | None:
        # an error status's body, or a JSON answer instead of a stream
        return self._refusal(answer, status) if answer is not None or (status or 200) >= 300 else None

    def _refusal(self, answer, status: int | None = None, midway: bool = False) -> PlatformError:
        """FastGPT's error (``{"code", "statusText", "message"}`` or ``{"message"}``) in plain words."""
        answer = answer if isinstance(answer, dict) else {}
        kind, detail = str(answer.get("statusText") or ""), _words(answer)
        if kind in REFUSALS:
            what = f"{REFUSALS[kind]} ({kind}{': ' + detail if detail else ''})"
        elif status == 404:
            what = f"{self.endpoint} answered 404 Not Found: check base_url (it ends in /api)"
        elif detail:
            what = f"FastGPT reported an error{' during the reply' if midway else ''}: {detail}"
        elif status and status >= 300:
            what = f"{self.endpoint} answered HTTP {status}"
        else:
            what = f"{self.endpoint} did not answer like FastGPT's chat API: check base_url"
        return PlatformError(f"{self.name}: {what}", kind)


def _words(error) -> str:
    """An error's message, shortened: FastGPT gives a dict with ``message``, or a string."""
    text = error.get("message") if isinstance(error, dict) else error
    text = " ".join(text.split()) if isinstance(text, str) else ""
    return text[:200] + "…" if len(text) > 200 else text
