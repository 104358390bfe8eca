"""The ``openai`` provider: any OpenAI-compatible chat completions API.

OpenAI, Ollama, DeepSeek, SiliconFlow, DashScope (compatible mode), vLLM, LM Studio::

    providers:
      local:    {plugin: openai, base_url: http://localhost:11434/v1, model: qwen2.5:1.5b}
      deepseek: {plugin: openai, base_url: https://api.deepseek.com, model: deepseek-chat,
                 api_key: ${DEEPSEEK_API_KEY}, timeout: 30}

The openai package is imported when a provider of this kind is first used, not when the plugin
loads: importing it costs ~0.7 s and ~24 MB, which a Raspberry Pi should not pay at startup
(nor at all when no provider uses it).

Failures become `ProviderError`. Before any text was produced they are retryable (the agent's
chain moves on to its next provider); once text has gone out they are not.
"""

from __future__ import annotations

import logging
import threading

from wellmate import ConfigError, Provider, ProviderError, Setting, hookimpl, json_dumps
from wellmate_plugins._platform import with_images

log = logging.getLogger("wellmate.provider_openai")


@hookimpl
def register_providers(register):
    register("openai", OpenAIProvider)


class OpenAIProvider(Provider):
    settings = {
        "base_url": Setting(None, "The API's address, usually ending in /v1, e.g. http://localhost:11434/v1 (Ollama).",
                            required=True),
        "model": Setting(None, "Model name, e.g. qwen2.5:1.5b, deepseek-chat, gpt-4o-mini.", required=True),
        "api_key": Setting("", "API key; leave empty for servers that need none (Ollama, LM Studio)."),
        "timeout": Setting(60.0, "Seconds to wait for the server: for an answer to start, and between "
                                 "pieces of a streamed one.", float, min=0.1),
        "connect_timeout": Setting(None, "Seconds to wait for a connection (default: timeout); a small "
                                         "value makes a switched-off server fall through quickly.", float, min=0.1),
        # The agent's provider chain is the fallback; SDK retries would only delay it.
        "max_retries": Setting(0, "Retries after a connection error, 429 or 5xx, before the chain moves on.",
                               int, min=0, max=10),
        "temperature": Setting(None, "Sampling temperature; unset: the server's default.", float, min=0, max=2),
        "max_tokens": Setting(None, "Longest reply, in tokens; unset: the server's default.", int, min=1),
        "stream_usage": Setting(False, "Ask for token usage at the end of a stream (stream_options); "
                                       "some servers refuse the option.", bool),
        "headers": Setting({}, "Extra HTTP headers for every request.", dict),
        "extra_body": Setting({}, "Extra fields for the request body, e.g. {enable_thinking: false}.", dict),
        "vision": Setting(False, "The model can see images (llava, qwen2.5vl, qwen-vl-max, gpt-4o-mini): it may "
                                 "be in an agent's vision_providers; images go as data: URLs.", bool),
    }
    @classmethod
    def check_config(cls, config: dict, where: str) -> dict:
        if not config["base_url"].startswith(("http://", "https://")):
            raise ConfigError(f"{where}.base_url: must start with http:// or https://, got {json_dumps(config['base_url'])}")
        for name, value in config["headers"].items():
            if isinstance(value, (bool, dict, list)) or value is None:
                raise ConfigError(f"{where}.headers.{name}: must be a string, got {json_dumps(value)}")
            config["headers"][name] = str(value)
        return config

    def __init__(self, name: str, config: dict, wm):
        super().__init__(name, config, wm)
        self._client = None
        self._lock = threading.Lock()

    def client(self):
        """The SDK client, made on first use and shared by every thread (httpx clients are
        thread-safe and pool connections)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _make_client(self):
        try:
            import openai
        except ImportError:
            raise ProviderError(f"{self.name}: the openai package is not installed; "
                                f"run: pip install -r requirements.txt")
        c = self.config
        timeout = c["timeout"]
        if c["connect_timeout"] is not None:
            timeout = openai.Timeout(timeout, connect=c["connect_timeout"])
        client = openai.OpenAI(
            base_url=c["base_url"],
            # Always a string, so the SDK never falls back to $OPENAI_API_KEY and sends that key to
            # some other server; servers without keys accept any.
            api_key=c["api_key"] or "not-needed",
            timeout=timeout, max_retries=c["max_retries"], default_headers=c["headers"] or None,
        )
        # Nor forward $OPENAI_ORG_ID / $OPENAI_PROJECT_ID: config.yaml says what is sent where.
        client.organization = client.project = None
        return client

    def _params(self, messages: list[dict], stream: bool) -> dict:
        c = self.config
        params = {"model": c["model"], "messages": messages}
        for key in ("temperature", "max_tokens"):
            if c[key] is not None:
                params[key] = c[key]
        if stream:
            params["stream"] = True
            if c["stream_usage"]:
                params["stream_options"] = {"include_usage": True}
        return {**params, **c["extra_body"]}

    def _request(self, client, messages: list[dict], stream: bool):
        """POST the chat completion request: a ChatCompletion, or a Stream of chunks.

        The body goes as a plain dict through ``client.post``, the SDK's documented way to send
        a request as it is. ``chat.completions.create`` would first run every message through
        the SDK's type transformer, ~0.25 ms a message: 6.5 ms of a turn with 25 messages of
        history on a desktop, which was most of what a turn cost the server (and ten times
        that on a Raspberry Pi). Errors, retries, timeouts and parsing stay the SDK's."""
        import openai
        from openai.types.chat import ChatCompletion, ChatCompletionChunk

        return client.post("/chat/completions", body=self._params(messages, stream), cast_to=ChatCompletion,
                                  stream=stream, stream_cls=openai.Stream[ChatCompletionChunk])

    def reply(self, messages: list[dict], turn=None) -> str:
        client = self.client()
        try:
            completion = self._request(client, with_images(messages, turn), stream=False)
        except Exception as e:
            raise self._error(e) from e
        choices = getattr(completion, "choices", None)
        if not choices:  # e.g. base_url is some web page that answered 200
            raise ProviderError(f"{self.name}: {self.config['base_url']} did not answer like an "
                                f"OpenAI-compatible API; check base_url")
        self._log_usage(getattr(completion, "usage", None))
        text = getattr(choices[0].message, "content", None)
        if not text:
            raise ProviderError(f"{self.name}: the reply was empty (finish_reason: {choices[0].finish_reason})")
        return text

    def stream(self, messages: list[dict], turn=None):
        client = self.client()
        try:
            response = self._request(client, with_images(messages, turn), stream=True)
        except Exception as e:
            raise self._error(e) from e
        sent = False
        try:
            for chunk in response:
                self._log_usage(getattr(chunk, "usage", None))
                if not chunk.choices:  # the usage chunk
                    continue
                # content is None in role-only and finish chunks, and while a reasoning model
                # streams reasoning_content, which is not part of the reply.
                text = getattr(getattr(chunk.choices[0], "delta", None), "content", None)
                if text:
                    sent = True
                    yield text
        except Exception as e:
            raise self._error(e, midway=sent) from e
        finally:
            # Also on GeneratorExit, when our client went away: hanging up tells the server to
            # stop generating.
            response.close()
        if not sent:
            raise ProviderError(f"{self.name}: the reply was empty")

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- errors -------------------------------------------------------------------------------
    def _error(self, e: Exception, midway: bool = False) -> ProviderError:
        """Say what went wrong in plain words, naming this provider."""
        import openai

        name, url, c = self.name, self.config["base_url"], self.config
        if isinstance(e, openai.APITimeoutError):
            if type(e.__cause__).__name__ == "ConnectTimeout":
                message = f"cannot connect to {url} (no answer within {c['connect_timeout'] or c['timeout']:g} s)"
            elif midway:
                message = f"the reply stopped for more than {c['timeout']:g} s (timeout)"
            else:
                message = f"no answer from {url} within {c['timeout']:g} s (timeout)"
        elif isinstance(e, openai.APIConnectionError):
            if midway:
                message = f"the connection broke during the reply ({_reason(e)})"
            else:
                message = f"cannot connect to {url} ({_reason(e)})"
        elif isinstance(e, openai.APIStatusError):
            status = e.status_code
            message = {
                401: "the API key was refused (401)",
                403: "access was denied (403)",
                404: f"{url} answered 404 Not Found: check base_url (it usually ends in /v1) and model '{c['model']}'",
                429: "too many requests or out of quota (429)",
            }.get(status) or (f"the server failed ({status})" if status >= 500 else f"the request was refused ({status})")
            message += _detail(e)
        elif isinstance(e, openai.APIError):  # an error event inside the stream
            message = "the server reported an error during the reply" + _detail(e)
        else:
            log.warning("%s: unexpected error from the openai client", name, exc_info=e)
            message = f"{type(e).__name__}: {e}"
        return ProviderError(f"{name}: {message}", retryable=not midway)

    def _log_usage(self, usage):
        if usage is not None:
            log.debug("%s: %s prompt + %s completion tokens", self.name,
                      getattr(usage, "prompt_tokens", "?"), getattr(usage, "completion_tokens", "?"))


def _detail(e) -> str:
    """The server's own words from an error body, shortened: ': message'."""
    body = getattr(e, "body", None)
    text = body.get("message") if isinstance(body, dict) else body
    if not isinstance(text, str) or not text.strip():
        return ""
    text = " ".join(text.split())
    return ": " + (text[:200] + "…" if len(text) > 200 else text)


def _reason(e: BaseException) -> str:
    """Why a connection failed, from the innermost cause: the SDK only says 'Connection error.'"""
    for _ in range(10):
        if (e.__cause__ or e.__context__) is None:
            break
        e = e.__cause__ or e.__context__
    text = str(e) or type(e).__name__
    if isinstance(e, ConnectionRefusedError) or "refused" in text.lower():
        return "connection refused"
    if "name or service not known" in text.lower() or "nodename nor servname" in text or "getaddrinfo" in text:
        return "host name not found"
    if "peer closed connection" in text:
        return "the server closed the connection"
    return text
