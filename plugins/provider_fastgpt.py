"""The ``fastgpt`` provider: an app on FastGPT, which keeps each conversation (docs/platforms.md).

It calls ``{base_url}/v1/chat/completions`` with ``detail: false`` (OpenAI-shaped chunks and
``[DONE]``) and a ``chatId`` it makes for each session, so a turn sends only the new message.
FastGPT puts its errors in the body: ``{"code": 514, "statusText": "unAuthApiKey", ...}`` with
status 200 (500 in newer versions), and ``event: error`` in a stream, a bad key's too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import uuid

from wellmate import ProviderError, Setting, hookimpl
from wellmate_plugins import _http
from wellmate_plugins._platform import PlatformProvider

log = logging.getLogger("wellmate.provider_fastgpt")

# FastGPT's statusText for the errors worth naming in plain words (ERROR_RESPONSE in its source).
REFUSALS = {
    "unAuthApiKey": "the API key was refused; an app's own key is needed",
    "insufficientQuota": "the FastGPT team is out of points",
    "unAuthChat": "FastGPT refused the conversation",
}


@hookimpl
def register_providers(register):
    register("fastgpt", FastGPTProvider)


class Rejected(ProviderError):  # FastGPT refused a chatId (another team's chat): start a new chat
    pass


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
    }

    def __init__(self, name: str, config: dict, wm):
        super().__init__(name, config, wm)
        base = self.config["base_url"]  # "/api" as FastGPT's docs write it; "/api/v1" works too
        self.endpoint = base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")
        self.auth = {"Authorization": f"Bearer {self.config['api_key']}"}

    def bot(self) -> str:
        # A key is one app's, and FastGPT looks chatIds up in it: another key's chats are not continued.
        return f"{self.endpoint}#{hashlib.sha256(self.config['api_key'].encode()).hexdigest()[:12]}"

    def reply(self, messages: list[dict], turn=None) -> str:
        return "".join(self._in_chat(turn, lambda chat, new: [self._complete(self._body(messages, turn, chat, new))]))

    def stream(self, messages: list[dict], turn=None):
        return self._in_chat(turn, lambda chat, new: self._stream(self._body(messages, turn, chat, new, stream=True)))

    def _in_chat(self, turn, ask):
        """What ``ask(chat_id, new)`` yields in the session's chat; a chat FastGPT refuses is
        dropped for a new one. A turn that is not a user's (turn None) has no chat."""
        chat_id = self.conversation(turn)
        new = chat_id is None
        chat_id = "wellmate-" + uuid.uuid4().hex if new and turn is not None else chat_id
        try:
            yield from ask(chat_id, new)
        except Rejected as e:
            if new:
                raise
            log.warning("%s; starting a new chat for session %s", e, turn.session.get("id"))
            self.remember(turn, None)
            chat_id, new = "wellmate-" + uuid.uuid4().hex, True
            yield from ask(chat_id, new)
        if new and turn is not None:  # only now: FastGPT saves a chat when its answer is complete
            self.remember(turn, chat_id)

    def _body(self, messages, turn, chat_id, new, stream=False) -> dict:
        # A new chat gets the session's recent history: FastGPT puts the messages before the last
        # after the history it has for the chatId (none yet), and answers the last.
        talk = self.recent(messages) if new else []
        body = {"stream": stream, "detail": False, "variables": self.fill(self.config["variables"], turn, messages),
                "messages": talk + [{"role": "user", "content": self.last_user_text(messages)}]}
        if chat_id is not None:
            body.update(chatId=chat_id, customUid=self.user_field(turn), responseChatItemId=turn.message_id or None)
        return {k: v for k, v in body.items() if v is not None}

    def _complete(self, body: dict) -> str:
        try:
            response = _http.request("POST", self.endpoint, body, self.auth, self.config["timeout"])
        except _http.HttpError as e:
            raise ProviderError(f"{self.name}: {e}") from None
        answer = _json(response.body)
        if not 200 <= response.status < 300 or not isinstance(answer, dict) or "choices" not in answer:
            raise self._refusal(answer, response.status)
        choices = answer["choices"] or [{}]
        text = (choices[0].get("message") or {}).get("content")
        if isinstance(text, str) and text:
            return text
        why = _words(answer.get("error"))  # the workflow's last node failed: no text, status 200
        raise ProviderError(f"{self.name}: " + (f"the app's workflow failed: {why}" if why else "the reply was empty"))

    def _stream(self, body: dict):
        events, sent, done = _http.events("POST", self.endpoint, body, self.auth, self.config["timeout"]), False, False
        try:
            for event in events:
                if event.data.startswith("[DONE]"):
                    done = True
                    break
                data = _json(event.data)
                if event.event == "error":
                    raise self._refusal(data if isinstance(data, dict) else {"message": event.data}, midway=sent)
                # Anything else without choices (newer versions' "event: chatTitle") is not text.
                for choice in (data.get("choices") if isinstance(data, dict) else None) or []:
                    text = (choice.get("delta") or {}).get("content")  # null in the closing chunk
                    if text:
                        sent = True
                        yield text
        except _http.HttpError as e:
            answer = _json(e.body)  # an error status's body, or a JSON answer instead of a stream
            if isinstance(answer, dict) or (e.status or 200) >= 300:
                raise self._refusal(answer, e.status) from None
            raise ProviderError(f"{self.name}: {e}", retryable=not sent) from None
        finally:
            events.close()  # also when our client went away: hanging up stops the workflow
        if not done:
            raise ProviderError(f"{self.name}: the stream ended before [DONE]", retryable=not sent)
        if not sent:
            raise ProviderError(f"{self.name}: the reply was empty")

    def _refusal(self, answer, status: int | None = None, midway: bool = False) -> ProviderError:
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
        error_class = Rejected if kind == "unAuthChat" and not midway else ProviderError
        return error_class(f"{self.name}: {what}", retryable=not midway)


def _json(data):
    with contextlib.suppress(TypeError, ValueError):
        return json.loads(data)


def _words(error) -> str:
    """An error's message, shortened: FastGPT gives a dict with ``message``, or a string."""
    text = error.get("message") if isinstance(error, dict) else error
    text = " ".join(text.split()) if isinstance(text, str) else ""
    return text[:200] + "…" if len(text) > 200 else text
