"""The ``dify`` provider: a Dify app (chatbot, agent or chatflow) through its Service API.

    providers:
      dify: {plugin: dify, base_url: https://api.dify.ai/v1, api_key: ${DIFY_API_KEY}}

Dify keeps each conversation; a turn sends the new message and the session's ``conversation_id``.
docs/platforms.md says what is sent and what each error does.
"""

from __future__ import annotations

from wellmate import ProviderError, Setting, hookimpl
from wellmate_plugins import _http
from wellmate_plugins._platform import PlatformError, PlatformProvider, json_event, upload

# Dify's answers meaning the session's conversation is gone: deleted, of another app or user
# (404 not_found "Conversation Not Exists."), or ended (400 conversation_completed).
LOST = ((404, "not_found"), (400, "conversation_completed"))


@hookimpl
def register_providers(register):
    register("dify", DifyProvider)


class DifyProvider(PlatformProvider):
    settings = {
        "base_url": Setting(None, "The app's API address, ending in /v1: https://api.dify.ai/v1 (Dify Cloud) "
                                  "or http://HOST/v1 (self-hosted).", required=True),
        "api_key": Setting(None, "The app's API key (app-...), from the app's 'API Access' page.", required=True),
        "timeout": Setting(60.0, "Seconds to wait for a whole blocking answer, and between two events of a stream "
                                 "(Dify's pings, every 10 s, do not count).", float, min=0.1),
        "inputs": Setting({}, "The app's input variables: texts with $placeholders ($name, ..., $system: Wellmate's "
                              "system prompt); Dify keeps a conversation's first inputs.", dict),
        "vision": Setting(False, "The app accepts images (its image upload is on, with a model that sees): it may "
                                 "be in an agent's vision_providers; images go through Dify's /files/upload.", bool),
    }
    stream_only = False  # set once the app refused blocking mode (agent apps)

    def reply(self, messages: list[dict], turn=None) -> str:
        if not self.stream_only:
            try:
                return self.once_in_conversation(turn, lambda conversation: self._blocking(
                    self._body(messages, turn, conversation, "blocking"), turn), LOST)
            except PlatformError as e:
                if "does not support blocking mode" not in str(e):
                    raise
                self.stream_only = True
        return "".join(self.stream(messages, turn))

    def stream(self, messages: list[dict], turn=None):
        agent = False  # an agent_message came: a new-style agent app ends them with one message repeating them all

        def read(event, sent):
            nonlocal agent
            data = json_event(event)
            self.keep(turn, data)
            kind, text = data.get("event"), data.get("answer")
            if kind == "message_replace" and sent:  # output moderation withdrew what was shown
                raise ProviderError(f"{self.name}: Dify's moderation withdrew the reply")
            if kind in ("agent_message", "message_replace") or (kind == "message" and not agent):
                agent = agent or kind == "agent_message"
                return [text] if isinstance(text, str) else []
            if kind == "message_end":
                return None  # a chatflow's workflow_finished may follow: nothing in it for us
            if kind == "error":
                raise ProviderError(f"{self.name}: Dify reported an error{' during the reply' if sent else ''}"
                                    f": {data.get('code')}: {data.get('message')}")
            return []
        return self.in_conversation(turn, lambda conversation: self.relay(
            self.url("/chat-messages"), self._body(messages, turn, conversation, "streaming"), read, "message_end"), LOST)

    # -- the request ------------------------------------------------------------------------------
    def _body(self, messages: list[dict], turn, conversation: str | None, mode: str) -> dict:
        # The turn's images, each uploaded (/files/upload) by the user who sends the message: Dify
        # shows a file to its own user only.
        files = [{"type": "image", "transfer_method": "local_file", "upload_file_id": upload(
            self, self.url("/files/upload"), image, lambda answer: answer.get("id"), user=self.user_field(turn))}
                 for image in (turn.attachments if turn else ())]
        body = {"query": self._query(messages, conversation), "inputs": self.fill(self.config["inputs"], turn, messages),
                "user": self.user_field(turn), "response_mode": mode,
                # Dify would ask its model to name each new conversation; Wellmate never shows the name.
                "auto_generate_name": False, **({"files": files} if files else {})}
        return {**body, "conversation_id": conversation} if conversation else body

    def _blocking(self, body: dict, turn) -> str:
        try:
            response = _http.request("POST", self.url("/chat-messages"), body, self.headers(), self.config["timeout"])
            if response.status != 200:
                raise _http.HttpError(f"HTTP {response.status} from {response.host}", response.status, response.body[:1000])
            answer = response.json()
        except _http.HttpError as e:
            raise self.failure(e) from None
        if not isinstance(answer, dict) or not isinstance(answer.get("answer"), str):
            raise ProviderError(f"{self.name}: {self.config['base_url']} did not answer like a Dify app; check base_url")
        self.keep(turn, answer)
        if not answer["answer"]:
            raise self.empty()
        return answer["answer"]

    def _query(self, messages: list[dict], conversation: str | None) -> str:
        """The user's message; in a conversation new to Dify, after the session's recent history
        (Dify's API has no other place for it)."""
        *earlier, message = self.to_send(messages, not conversation)
        if not earlier:
            return message["content"]
        said = "\n".join(f"{'User' if m['role'] == 'user' else 'Assistant'}: {m['content']}" for m in earlier)
        return f"(Our conversation so far:\n{said})\n\n{message['content']}"

    def refused(self, answer: dict | None, status: int | None) -> PlatformError | None:
        """Dify's error in plain words, naming this provider; its code (with the status) tells a
        lost conversation. None for no answer, a broken or stalled stream, or no JSON."""
        if status is None or 200 <= status < 300:
            return None
        code, words = str((answer or {}).get("code") or ""), " ".join(str((answer or {}).get("message") or "").split())
        url = self.config["base_url"]
        message = {401: "the API key was refused (401)",
                   404: f"{url} answered 404 Not Found: check base_url (it ends in /v1)",
                   429: "too many requests (429)"}.get(status) or (
            f"Dify failed ({status})" if status >= 500 else f"the request was refused ({status})")
        message += f": {code}: {words[:200]}" if words else ""
        return PlatformError(f"{self.name}: {message}", (status, code))
