"""The ``dify`` provider: a Dify app (chatbot, agent or chatflow) through its Service API.

    providers:
      dify: {plugin: dify, base_url: https://api.dify.ai/v1, api_key: ${DIFY_API_KEY}}

Dify keeps each conversation; a turn sends the new message and the session's ``conversation_id``.
docs/platforms.md says what is sent and what each error does.
"""

from __future__ import annotations

import json
import logging

from wellmate import ProviderError, Setting, hookimpl
from wellmate_plugins._http import HttpError, events, request
from wellmate_plugins._platform import PlatformProvider

log = logging.getLogger("wellmate.provider_dify")

# Dify's answers meaning the session's conversation is gone: deleted, of another app or user
# (404 not_found "Conversation Not Exists."), or ended (400 conversation_completed).
LOST = {(404, "not_found"), (400, "conversation_completed")}


@hookimpl
def register_providers(register):
    register("dify", DifyProvider)


class DifyProvider(PlatformProvider):
    settings = {
        "base_url": Setting(None, "The app's API address, ending in /v1: https://api.dify.ai/v1 (Dify Cloud) "
                                  "or http://HOST/v1 (self-hosted).", required=True),
        "api_key": Setting(None, "The app's API key (app-...), from the app's 'API Access' page.", required=True),
        "timeout": Setting(60.0, "Seconds to wait for a whole blocking answer, and between two events of a stream "
                                 "(Dify pings every 10 s).", float, min=0.1),
        "inputs": Setting({}, "The app's input variables: texts with $placeholders ($name, ..., $system: Wellmate's "
                              "system prompt); Dify keeps a conversation's first inputs.", dict),
    }
    stream_only = False  # set once the app refused blocking mode (agent apps)

    def reply(self, messages: list[dict], turn=None) -> str:
        if self.stream_only:
            return "".join(self.stream(messages, turn))
        try:
            answer = next(self._ask(messages, turn, streaming=False))
        except HttpError as e:
            if "does not support blocking mode" in _said(e)[1]:
                self.stream_only = True
                return "".join(self.stream(messages, turn))
            raise self._error(e) from None
        if not isinstance(answer, dict) or not isinstance(answer.get("answer"), str):
            raise ProviderError(f"{self.name}: {self.config['base_url']} did not answer like a Dify app; check base_url")
        self._keep(turn, answer)
        if not answer["answer"]:
            raise ProviderError(f"{self.name}: the reply was empty")
        return answer["answer"]

    def stream(self, messages: list[dict], turn=None):
        items = self._ask(messages, turn, streaming=True)
        sent = agent = ended = False
        try:
            for data in items:
                self._keep(turn, data)
                kind, text = data.get("event"), data.get("answer")
                if kind == "message_replace" and sent:  # output moderation withdrew what was shown
                    raise ProviderError(f"{self.name}: Dify's moderation withdrew the reply", retryable=False)
                # A new-style agent app ends its agent_message pieces with one message repeating them all.
                if kind in ("agent_message", "message_replace") or (kind == "message" and not agent):
                    agent = agent or kind == "agent_message"
                    if isinstance(text, str) and text:
                        sent = True
                        yield text
                elif kind == "message_end":
                    ended = True
                    break  # a chatflow's workflow_finished may follow: nothing in it for us
                elif kind == "error":
                    raise ProviderError(f"{self.name}: Dify reported an error{' during the reply' if sent else ''}"
                                        f": {data.get('code')}: {data.get('message')}", retryable=not sent)
        except HttpError as e:
            raise self._error(e, midway=sent) from None
        finally:
            items.close()  # also when our client went away: hanging up stops Dify's answer
        if not ended:
            raise ProviderError(f"{self.name}: the stream ended before message_end", retryable=not sent)
        if not sent:
            raise ProviderError(f"{self.name}: the reply was empty")

    # -- the request ------------------------------------------------------------------------------
    def _ask(self, messages: list[dict], turn, streaming: bool):
        """The answer's JSON objects (a stream's events, or the one blocking answer). A session whose
        conversation Dify has lost starts a new one, which gets the recent history."""
        conversation = self.conversation(turn)
        url, headers = self.config["base_url"] + "/chat-messages", {"Authorization": f"Bearer {self.config['api_key']}"}
        while True:
            body = {"query": self._query(messages, conversation), "inputs": self.fill(self.config["inputs"], turn, messages),
                    "user": self.user_field(turn), "response_mode": "streaming" if streaming else "blocking",
                    # Dify would ask its model to name each new conversation; Wellmate never shows the name.
                    "auto_generate_name": False}
            if conversation:
                body["conversation_id"] = conversation
            try:
                if streaming:
                    for event in events("POST", url, body, headers, self.config["timeout"]):
                        data = event.json()
                        yield data if isinstance(data, dict) else {}
                    return
                response = request("POST", url, body, headers, self.config["timeout"])
                if response.status != 200:
                    raise HttpError(f"HTTP {response.status} from {response.host}", response.status, response.body[:1000])
                yield response.json()
                return
            except HttpError as e:
                if not (conversation and e.events == 0 and (e.status, _said(e)[0]) in LOST):
                    raise
                log.info("%s: Dify has lost conversation %s (%s); starting a new one", self.name, conversation, e.status)
            self.remember(turn, None)
            conversation = None

    def _query(self, messages: list[dict], conversation: str | None) -> str:
        """The user's message; in a conversation new to Dify, after the session's recent history
        (Dify's API has no other place for it)."""
        text = self.last_user_text(messages)
        earlier = [] if conversation else self.recent(messages)
        if not earlier:
            return text
        said = "\n".join(f"{'User' if m['role'] == 'user' else 'Assistant'}: {m['content']}" for m in earlier)
        return f"(Our conversation so far:\n{said})\n\n{text}"

    def _keep(self, turn, data: dict) -> None:  # the conversation Dify answered in becomes the session's
        conversation = data.get("conversation_id")
        if turn is not None and isinstance(conversation, str) and conversation and conversation != self.conversation(turn):
            self.remember(turn, conversation)

    def _error(self, e: HttpError, midway: bool = False) -> ProviderError:
        """Say what went wrong in plain words, naming this provider."""
        status, url = e.status, self.config["base_url"]
        if status is None or 200 <= status < 300:  # no answer, a broken or stalled stream, no JSON
            message = str(e)
        else:
            message = {401: "the API key was refused (401)",
                       404: f"{url} answered 404 Not Found: check base_url (it ends in /v1)",
                       429: "too many requests (429)"}.get(status) or (
                f"Dify failed ({status})" if status >= 500 else f"the request was refused ({status})")
            code, words = _said(e)
            message += f": {code}: {words[:200]}" if words else ""
        return ProviderError(f"{self.name}: {message}", retryable=not midway)


def _said(e: HttpError) -> tuple[str, str]:
    """Dify's code and words from its JSON error body ({"code", "message", "status"}), or ("", "")."""
    try:
        body = json.loads(e.body)
        return str(body.get("code") or ""), " ".join(str(body.get("message") or "").split())
    except (ValueError, TypeError, AttributeError):  # no JSON, or not an object
        return "", ""
