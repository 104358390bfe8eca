"""What the agent-platform providers (Coze, FastGPT, Dify) share; a library, not a plugin.

These platforms keep each conversation's history themselves: a provider sends only the new
message plus the platform's id for the conversation. `PlatformProvider` maps a Wellmate session
to that id (kept in the session's ``links`` through the chat service, so it is deleted and
exported with the session), names the user by a stable id, and fills the platform's variables
from the same ``$placeholders`` as prompts.
"""

from __future__ import annotations

import base64
import json
import logging
import string
import time
import urllib.parse
import uuid

from wellmate import ConfigError, Provider, ProviderError, Turn, json_dumps
from wellmate_plugins import _http

log = logging.getLogger("wellmate.platform")


class PlatformError(ProviderError):
    """An error the platform reported, with its own ``code`` for it (Coze's 4002, FastGPT's
    statusText, Dify's (status, code)): `in_conversation` tells a rejected conversation by it."""

    def __init__(self, message: str, code=None, retryable: bool = True):
        super().__init__(message, retryable)
        self.code = code


def json_object(data) -> dict | None:
    """The JSON object in a body or an event's data (bytes or text), or None: the platforms send
    their errors as JSON whatever the HTTP status, and a proxy's page is no JSON at all."""
    try:
        answer = json.loads(data)
    except (TypeError, ValueError):
        return None
    return answer if isinstance(answer, dict) else None


def json_event(event: _http.Event) -> dict:
    """An event's data as a JSON object ({} for other JSON); HttpError when it is no JSON."""
    data = event.json()
    return data if isinstance(data, dict) else {}


class PlatformProvider(Provider):
    """Base of providers whose platform keeps the conversation. A subclass says what identifies
    its bot (`bot`); a conversation started with another bot, or under another provider name,
    is not continued."""

    # How many earlier messages to send when a session has no conversation on the platform yet
    # (its link was lost, or the platform rejected it) but has history in Wellmate.
    recent_messages = 10
    # `poll` asks after 0.1 s, doubling to coze-py's 1 s: Coze answers ready after 0.05, 0.3 and
    # 1.5 s came 59, 49 and 56 ms later, against 981, 760 and 563 ms polling every second; one
    # ready after 4 s costs 7 polls, not 4, and waits up to 1 s either way (bench/coze).
    first_poll, longest_poll = 0.1, 1.0

    @classmethod
    def check_config(cls, config: dict, where: str) -> dict:
        if not str(config.get("base_url", "")).startswith(("http://", "https://")):
            raise ConfigError(f"{where}.base_url: must start with http:// or https://, "
                              f"got {json_dumps(config.get('base_url'))}")
        config["base_url"] = config["base_url"].rstrip("/")
        for key in ("variables", "inputs", "custom_variables"):
            for name, value in (config.get(key) or {}).items():
                if not isinstance(value, str):
                    raise ConfigError(f"{where}.{key}.{name}: must be a string (it may use $placeholders), "
                                      f"got {json_dumps(value)}")
                if not string.Template(value).is_valid():
                    raise ConfigError(f"{where}.{key}.{name}: a '$' that is not a placeholder; write $$ for a dollar sign")
        return config

    @property
    def reads_system_prompt(self) -> bool:
        """Only through ``$system`` in the platform's variables: else a library passage Wellmate
        put in the prompt never reached the bot, and the reply does not cite it."""
        return any("system" in string.Template(text).get_identifiers()
                   for key in ("variables", "inputs", "custom_variables")
                   for text in (self.config.get(key) or {}).values())

    def bot(self) -> str:
        """What names the bot or app on the platform; override to add a bot id."""
        return self.config["base_url"]

    # -- the session's conversation on the platform
    def conversation(self, turn: Turn | None) -> str | None:
        """The platform's id for this turn's session, or None: a new conversation."""
        if turn is None:
            return None
        link = (turn.session.get("links") or {}).get(self.name)
        if isinstance(link, dict) and link.get("bot") == self.bot() and isinstance(link.get("id"), str):
            return link["id"]
        return None

    def remember(self, turn: Turn | None, conversation_id: str | None) -> None:
        """Keep (or, with None, drop) the platform's id for this turn's session; a no-op when the
        session has it already (a provider may say it on every turn, or every event). A provider
        built without an app (wm None, as a script may) keeps it in ``turn.session`` only."""
        if turn is None:
            return
        value = None if conversation_id is None else {"id": conversation_id, "bot": self.bot()}
        if (turn.session.get("links") or {}).get(self.name) == value:
            return
        chat = self.wm.service("chat") if self.wm is not None else None
        if chat is not None and turn.session.get("id"):
            chat.sessions.link(turn.session["id"], self.name, value)
        links = dict(turn.session.get("links") or {})
        if value is None:
            links.pop(self.name, None)
        else:
            links[self.name] = value
        turn.session["links"] = links  # a retry in this same turn sees it

    def in_conversation(self, turn: Turn | None, ask, rejected):
        """What ``ask(conversation_id)`` yields (a stream's text, or a one-off answer in a list), in
        the session's conversation (None: start one; the request then sends the recent history).
        When the platform no longer knows the id (deleted in its console: a PlatformError whose
        ``code`` is one of ``rejected``, a tuple since a code may be any JSON) before anything was
        yielded, the link is dropped and a new conversation started, once."""
        conversation, given = self.conversation(turn), False
        try:
            for item in ask(conversation):
                given = True
                yield item
            return
        except PlatformError as e:
            if conversation is None or given or e.code not in rejected:
                raise
        log.info("%s: the platform no longer knows conversation %s; starting a new one", self.name, conversation)
        self.remember(turn, None)
        yield from ask(None)

    def once_in_conversation(self, turn: Turn | None, ask, rejected):
        """The one answer ``ask(conversation_id)`` returns, in the session's conversation (as
        `in_conversation`: a rejected one is replaced, once)."""
        return next(self.in_conversation(turn, lambda conversation: [ask(conversation)], rejected))

    def poll(self, job: dict, fetch, running, started: float) -> dict:
        """``job`` (an answer the platform goes on working at after the request that started it
        returned) fetched anew with ``fetch(seconds_left)`` while ``running(job)``, then returned.
        Past ``timeout`` seconds from ``started`` (a ``time.monotonic()``) the job is stopped
        (`give_up`) and the turn fails with a timeout."""
        deadline, delay = started + self.config["timeout"], self.first_poll
        while running(job):
            if time.monotonic() + delay > deadline:
                self.give_up(job)
                raise PlatformError(f"{self.name}: no answer within {self.config['timeout']:g} s (timeout)")
            time.sleep(delay)
            delay = min(delay * 2, self.longest_poll)
            job = fetch(max(deadline - time.monotonic(), .1))
        return job

    def give_up(self, job: dict) -> None:
        """Have the platform `stop` a job no one waits for any more; a failure is only logged."""
        try:
            self.stop(job)
        except ProviderError as e:
            log.info("%s: stopping %s: %s", self.name, job.get("id"), e)

    def stop(self, job: dict) -> None:
        """Stop the platform's work on ``job`` (Coze cancels its chat); nothing by default."""

    def relay(self, url: str, body: dict, read, end: str):
        """Yield the text of the SSE stream that POSTing ``body`` to ``url`` answers: ``read(event,
        sent)`` gives each event's pieces (or None at the platform's end marker, named ``end`` in
        errors) and raises PlatformError for the platform's errors. Any failure is retryable only
        before the first text (the chain's next provider may answer); after it the stream ends
        with an error."""
        events, sent, done = _http.events("POST", url, body, self.headers(), self.config["timeout"]), False, False
        try:
            for event in events:
                pieces = read(event, sent)
                if pieces is None:
                    done = True
                    break
                for piece in pieces:
                    if piece:
                        sent = True
                        yield piece
        except _http.HttpError as e:
            raise self.failure(e, midway=sent) from None
        except ProviderError as e:
            e.retryable = e.retryable and not sent
            raise
        finally:
            events.close()  # also when our client went away: hanging up stops the platform's answer
        if not done:
            raise ProviderError(f"{self.name}: the stream ended before {end}", retryable=not sent)
        if not sent:
            raise self.empty()

    def request(self, method: str, url: str, body: dict | None = None, timeout: float | None = None) -> _http.Response:
        """One request with the API key, answered with any status; PlatformError when no answer came."""
        try:
            return _http.request(method, url, body, self.headers(), timeout or self.config["timeout"])
        except _http.HttpError as e:
            raise PlatformError(f"{self.name}: {e}") from None

    def failure(self, e: _http.HttpError, midway: bool = False) -> ProviderError:
        """The ProviderError for a request that got no usable answer: the platform's own error when
        the body holds one (they send it as JSON whatever the HTTP status, a refused stream too)."""
        error = self.refused(json_object(e.body), e.status) or ProviderError(f"{self.name}: {e}")
        error.retryable = not midway
        return error

    def refused(self, answer: dict | None, status: int | None) -> PlatformError | None:
        """The platform's error in an answer (its JSON object, None when it is not JSON) with this
        HTTP status, or None when it holds none; each provider reads its platform's shape."""
        return None

    def empty(self) -> ProviderError:
        return ProviderError(f"{self.name}: the reply was empty")

    def url(self, path: str, **query) -> str:
        """``base_url`` + ``path``, with the query's values that are set."""
        query = urllib.parse.urlencode({k: v for k, v in query.items() if v not in (None, "")})
        return self.config["base_url"] + path + (f"?{query}" if query else "")

    def headers(self) -> dict:
        """The API key as the three platforms take it: a bearer token."""
        return {"Authorization": f"Bearer {self.config['api_key']}"}

    def user_field(self, turn: Turn | None) -> str:
        """A stable id for the user on the platform: Wellmate's user id, never the username
        (which the user may change, and which should not leave the server)."""
        return f"wellmate-{turn.user['id']}" if turn is not None and turn.user.get("id") else "wellmate"

    # -- what to send
    @staticmethod
    def system_text(messages: list[dict]) -> str:
        return "\n\n".join(m["content"] for m in messages if m.get("role") == "system")

    @staticmethod
    def last_user_text(messages: list[dict]) -> str:
        for message in reversed(messages):
            if message.get("role") == "user":
                return message.get("content") or ""
        return ""

    def recent(self, messages: list[dict]) -> list[dict]:
        """The history before the new message (user and assistant turns, newest last), for a
        conversation the platform does not have yet."""
        talk = [m for m in messages if m.get("role") in ("user", "assistant")]
        return talk[:-1][-self.recent_messages:] if talk else []

    def to_send(self, messages: list[dict], new: bool) -> list[dict]:
        """The user's new message; in a new conversation, after the session's recent history."""
        return (self.recent(messages) if new else []) + [{"role": "user", "content": self.last_user_text(messages)}]

    def keep(self, turn: Turn | None, answer: dict) -> None:
        """The conversation a platform's answer names (Coze's and Dify's ``conversation_id``)
        becomes the session's."""
        if isinstance(answer.get("conversation_id"), str) and answer["conversation_id"]:
            self.remember(turn, answer["conversation_id"])

    def fill(self, templates: dict, turn: Turn | None, messages: list[dict]) -> dict:
        """Config values with ``$placeholders`` filled for this turn: the prompt placeholders
        (``$name``, ``$age``, ``$today``, ...) plus ``$system``, Wellmate's rendered system prompt.
        An unknown placeholder is left as written."""
        if not templates:
            return {}
        values = {"system": self.system_text(messages)}
        if turn is not None:
            used = {name for text in templates.values() for name in string.Template(text).get_identifiers()}
            for key, value in self.wm.prompt_values(turn.user, turn.agent).items():
                if key in used:  # values given as functions are worked out only when used
                    values[key] = str(value()) if callable(value) else value
        return {name: string.Template(text).safe_substitute(values) for name, text in templates.items()}


# -- images (a turn's ``attachments``: docs/photos.md) ---------------------------------------------
# Each is a dict {"type": "image", "id", "content_type", "width", "height", "size", "data"}: the
# stored upload, downscaled and without metadata. OpenAI-compatible servers and FastGPT take it in
# the message as a data: URL; Coze and Dify take the id their own file API gives it.

def data_url(image: dict) -> str:
    """The image as a ``data:`` URL: the only kind Ollama takes (no http URL, no bare base64)."""
    return f"data:{image['content_type']};base64,{base64.b64encode(image['data']).decode('ascii')}"


def with_images(messages: list[dict], turn: Turn | None) -> list[dict]:
    """``messages`` with the turn's images in the user's new message, as OpenAI-style content
    parts: its text (if any), then an ``image_url`` part for each image."""
    images = turn.attachments if turn is not None else ()
    if not images or not messages or messages[-1].get("role") != "user":
        return messages
    text = messages[-1].get("content") or ""
    parts = ([{"type": "text", "text": text}] if text else []) + [
        {"type": "image_url", "image_url": {"url": data_url(image)}} for image in images]
    return messages[:-1] + [{**messages[-1], "content": parts}]


def form(image: dict, fields: dict) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body holding ``fields`` as text parts and the image as the part
    ``file`` (with its Content-Type: Dify refuses a file part without one), and its Content-Type."""
    boundary = "wellmate-" + uuid.uuid4().hex
    extension = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}.get(image["content_type"], "bin")
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{image["id"]}.{extension}"'
                 f'\r\nContent-Type: {image["content_type"]}\r\n\r\n'.encode() + image["data"] + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(provider: PlatformProvider, url: str, image: dict, id_of, **fields) -> str:
    """POST the image to a platform's file API (Coze's and Dify's ``/files/upload``) as a form
    with ``fields``; the platform's id for it, which ``id_of(answer)`` reads from the JSON object
    answered. Else PlatformError (the platform's own, through ``provider.refused``), retryable:
    the next vision provider may see the image."""
    body, content_type = form(image, fields)
    try:
        response = _http.request("POST", url, body, {**provider.headers(), "Content-Type": content_type},
                                 provider.config["timeout"])
    except _http.HttpError as e:
        raise PlatformError(f"{provider.name}: uploading an image: {e}") from None
    answer = json_object(response.body)
    error = provider.refused(answer, response.status)
    if error is not None:
        raise error
    file_id = id_of(answer) if answer is not None and 200 <= response.status < 300 else None
    if not isinstance(file_id, str) or not file_id:
        raise PlatformError(f"{provider.name}: {response.host} answered the image upload without a file id "
                            f"(HTTP {response.status}); check base_url")
    return file_id
