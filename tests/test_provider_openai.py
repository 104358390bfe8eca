"""The openai provider against a fake OpenAI-compatible server, over real HTTP."""

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pluggy
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import wellmate  # noqa: E402
from plugins import provider_openai  # noqa: E402
from plugins.provider_openai import OpenAIProvider  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI, words  # noqa: E402
from wellmate import ConfigError, ProviderError  # noqa: E402

WHERE = "config.yaml: providers.local"
MESSAGES = [
    {"role": "system", "content": "你是一位温和的健康助手。Answer briefly."},
    {"role": "user", "content": "I slept badly last night."},
]
LONG = "Try to keep the same bedtime every night, and put the phone away an hour before sleep."


@pytest.fixture
def fake():
    with FakeOpenAI(reply=LONG) as server:
        yield server
    assert not server.leftover_threads


@pytest.fixture
def make(fake):
    """Build providers on the fake (or another base_url), from config.yaml-style settings."""
    made = []

    def make(**settings):
        raw = {"plugin": "openai", "base_url": fake.url, "model": "qwen2.5:1.5b", "timeout": 2, **settings}
        config, warnings = OpenAIProvider.validate(raw, WHERE)
        assert warnings == []
        provider = OpenAIProvider("local", config, wm=None)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


def collect(stream):
    """Read a stream to its end or its error: (pieces, error)."""
    pieces = []
    try:
        for piece in stream:
            pieces.append(piece)
    except ProviderError as e:
        return pieces, e
    return pieces, None


# -- answers ------------------------------------------------------------------------------------


def test_reply_returns_the_whole_text(fake, make):
    assert make().reply(MESSAGES) == LONG
    body = fake.last.body
    assert body["model"] == "qwen2.5:1.5b"
    assert body["messages"] == MESSAGES
    assert not body.get("stream")


def test_stream_yields_the_pieces_the_server_sent(fake, make):
    pieces, error = collect(make().stream(MESSAGES))
    assert error is None
    assert pieces == words(LONG)
    assert "".join(pieces) == LONG
    assert fake.last.body["stream"] is True
    assert "stream_options" not in fake.last.body  # some servers refuse it; off by default


def test_stream_deltas_arrive_while_the_server_is_still_sending(fake, make):
    fake.delay_between_chunks = 0.05
    stream = make().stream(MESSAGES)
    first = next(stream)
    assert first == words(LONG)[0]
    assert not fake.last.done.is_set(), "the first delta waited for the whole answer"
    assert first + "".join(stream) == LONG
    assert fake.last.done.wait(10)
    assert not fake.last.client_closed.is_set()  # so the hang-up tests below mean something


def test_stream_usage_asks_for_usage_and_skips_the_usage_chunk(fake, make):
    pieces, error = collect(make(stream_usage=True).stream(MESSAGES))
    assert error is None and "".join(pieces) == LONG
    assert fake.last.body["stream_options"] == {"include_usage": True}


def test_request_carries_settings_key_and_headers(fake, make):
    fake.api_key = "sk-test"  # the fake refuses any other key
    provider = make(api_key="sk-test", connect_timeout=1, temperature=0.3, max_tokens=200, headers={"X-Trace": "abc", "X-Num": 7},
                    extra_body={"enable_thinking": False})
    assert provider.reply(MESSAGES) == LONG
    assert "".join(provider.stream(MESSAGES)) == LONG
    for request in fake.requests:
        assert request.headers["authorization"] == "Bearer sk-test"
        assert request.headers["x-trace"] == "abc"
        assert request.headers["x-num"] == "7"
        assert request.body["temperature"] == 0.3
        assert request.body["max_tokens"] == 200
        assert request.body["enable_thinking"] is False
        assert request.body["messages"][0] == MESSAGES[0]


def test_no_key_sends_a_placeholder_and_nothing_from_the_environment(fake, make, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-personal-openai-key")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-personal")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-personal")
    make().reply(MESSAGES)
    headers = fake.last.headers
    assert headers["authorization"] == "Bearer not-needed"
    assert "openai-organization" not in headers and "openai-project" not in headers
    assert "temperature" not in fake.last.body and "max_tokens" not in fake.last.body


def test_chinese_reply_split_inside_utf8_sequences_arrives_intact(fake, make):
    fake.reply = "你好！昨晚没睡好吗？睡前一小时放下手机，喝杯温水，早点休息。🌙"
    fake.fragment = 1  # every byte its own HTTP chunk: each character is cut across reads
    provider = make()
    assert provider.reply(MESSAGES) == fake.reply
    pieces, error = collect(provider.stream(MESSAGES))
    assert error is None
    assert pieces == words(fake.reply)
    assert "".join(pieces) == fake.reply


def test_keepalive_comments_and_blank_lines_are_ignored(fake, make):
    fake.mode = "keepalive"
    provider = make()
    assert provider.reply(MESSAGES) == LONG
    assert list(provider.stream(MESSAGES)) == words(LONG)


def test_the_client_is_made_once_and_shared_by_threads(fake, make):
    provider = make()
    clients, replies = [], []

    def work():
        clients.append(provider.client())
        replies.append(provider.reply(MESSAGES))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert replies == [LONG] * 8
    assert all(c is clients[0] for c in clients)


def test_empty_reply_is_an_error_the_chain_can_pass_over(fake, make):
    fake.reply = ""
    provider = make()
    for call in (provider.reply, lambda m: list(provider.stream(m))):
        with pytest.raises(ProviderError) as e:
            call(MESSAGES)
        assert e.value.retryable and "empty" in str(e.value)


# -- failures before any text: retryable, so the chain tries the next provider ------------------


@pytest.mark.parametrize("mode, words_", [
    ("401", "the API key was refused (401): Incorrect API key provided"),
    ("429", "too many requests or out of quota (429): Rate limit reached"),
    ("500", "the server failed (500): The server had an error"),
    ("503", "the server failed (503): The engine is currently overloaded"),
])
@pytest.mark.parametrize("streaming", [False, True])
def test_http_errors_are_retryable_and_say_why(fake, make, mode, words_, streaming):
    fake.mode = mode
    provider = make()
    with pytest.raises(ProviderError) as e:
        provider.reply(MESSAGES) if not streaming else list(provider.stream(MESSAGES))
    assert e.value.retryable
    assert str(e.value).startswith(f"local: {words_}")
    assert len(fake.requests) == 1  # no SDK retries by default: the chain is the fallback


def test_max_retries_retries(fake, make):
    fake.mode = "500"
    with pytest.raises(ProviderError):
        make(max_retries=1).reply(MESSAGES)
    assert len(fake.requests) == 2


def test_wrong_base_url_says_to_check_it(fake, make):
    provider = make(base_url=fake.url[:-len("/v1")])  # the usual Ollama slip: no /v1
    with pytest.raises(ProviderError) as e:
        provider.reply(MESSAGES)
    assert e.value.retryable
    assert "answered 404 Not Found: check base_url (it usually ends in /v1)" in str(e.value)


@pytest.mark.parametrize("streaming", [False, True])
def test_connection_refused_fails_fast(make, streaming):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"  # nothing listens here now
    provider = make(base_url=url, timeout=10)
    with pytest.raises(ProviderError) as e:
        provider.reply(MESSAGES) if not streaming else next(provider.stream(MESSAGES))
    assert e.value.retryable
    # Refused, not waited out: a wait would end in the 10 s timeout's own message.
    assert str(e.value) == f"local: cannot connect to {url} (connection refused)"


@pytest.mark.parametrize("streaming", [False, True])
def test_slow_first_token_beyond_timeout(fake, make, streaming):
    fake.mode, fake.first_token_delay = "slow_first_token", 5
    provider = make(timeout=0.5)
    if streaming:
        pieces, error = collect(provider.stream(MESSAGES))
        assert pieces == []  # the role chunk came, but no text: the chain may still move on
    else:
        with pytest.raises(ProviderError) as e:
            provider.reply(MESSAGES)
        error = e.value
    assert error.retryable
    assert str(error) == f"local: no answer from {fake.url} within 0.5 s (timeout)"


# -- failures after text went out: not retryable --------------------------------------------


def test_stall_mid_stream_times_out_and_hangs_up(fake, make):
    fake.mode = "stall_mid_stream"
    pieces, error = collect(make(timeout=0.5).stream(MESSAGES))
    assert pieces == words(LONG)[:2]
    assert error is not None and not error.retryable
    assert str(error) == "local: the reply stopped for more than 0.5 s (timeout)"
    assert fake.last.client_closed.wait(10), "the stalled upstream request was left open"


def test_error_event_mid_stream(fake, make):
    fake.mode = "error_mid_stream"
    pieces, error = collect(make().stream(MESSAGES))
    assert pieces == words(LONG)[:2]
    assert error is not None and not error.retryable
    assert str(error) == ("local: the server reported an error during the reply: "
                          "The server had an error while processing your request. Sorry about that!")


def test_connection_dropped_mid_stream(fake, make):
    fake.mode = "broken"
    pieces, error = collect(make().stream(MESSAGES))
    assert pieces == words(LONG)[:2]
    assert error is not None and not error.retryable
    assert str(error) == "local: the connection broke during the reply (the server closed the connection)"


def test_closing_the_stream_early_closes_the_upstream_request(fake, make):
    fake.delay_between_chunks = 0.1
    stream = make().stream(MESSAGES)
    assert next(stream) == words(LONG)[0]
    stream.close()  # what waitress does when our own client goes away
    assert fake.last.client_closed.wait(10), "the upstream kept generating for nobody"


# -- the fake itself: a test that ends mid-stream must not leave threads behind ------------


def test_stopping_the_fake_ends_a_stalled_stream_and_kept_alive_connections(make):
    server = FakeOpenAI(reply=LONG, mode="stall_mid_stream").start()
    provider = make(base_url=server.url, timeout=30)
    stream = provider.stream(MESSAGES)
    assert [next(stream), next(stream)] == words(LONG)[:2]  # now stalled
    stopper = threading.Timer(0.2, server.stop)
    stopper.start()
    pieces, error = collect(stream)
    assert pieces == [] and error is not None and not error.retryable
    assert "timeout" not in str(error)  # ended by the stop, not by waiting out the 30 s timeout
    stopper.join(10)
    assert server._httpd is None and server.leftover_threads == []


def test_stopping_the_fake_hangs_up_idle_kept_alive_connections(make):
    server = FakeOpenAI(reply=LONG).start()
    provider = make(base_url=server.url)
    assert provider.reply(MESSAGES) == LONG  # its connection stays open in the client's pool
    server.stop()
    assert server.leftover_threads == []


def test_models_list(fake, make):
    assert [m.id for m in make().client().models.list()] == ["fake-model"]


# -- config ------------------------------------------------------------------------------------


def test_validate_fills_defaults():
    config, warnings = OpenAIProvider.validate(
        {"plugin": "openai", "base_url": "http://localhost:11434/v1", "model": "qwen2.5:1.5b"}, WHERE)
    assert warnings == []
    assert config["api_key"] == "" and config["timeout"] == 60.0 and config["max_retries"] == 0
    assert config["temperature"] is None and config["headers"] == {} and config["stream_usage"] is False


@pytest.mark.parametrize("change, message", [
    ({"timeout": "abc"}, f'{WHERE}.timeout: must be a number >= 0.1, got "abc"'),
    ({"max_retries": 1.5}, f"{WHERE}.max_retries: must be an integer 0-10, got 1.5"),
    ({"temperature": 3}, f"{WHERE}.temperature: must be a number 0-2, got 3"),
    ({"headers": ["X-A: b"]}, f'{WHERE}.headers: must be a mapping, got ["X-A: b"]'),
    ({"headers": {"X-A": None}}, f"{WHERE}.headers.X-A: must be a string, got null"),
    ({"model": ""}, f"{WHERE}.model: required: Model name"),
    ({"base_url": None}, f"{WHERE}.base_url: required: The API's address"),
    ({"base_url": "localhost:11434/v1"}, f'{WHERE}.base_url: must start with http:// or https://, got "localhost:11434/v1"'),
])
def test_validate_errors_name_the_key(change, message):
    raw = {"plugin": "openai", "base_url": "http://localhost:11434/v1", "model": "m", **change}
    with pytest.raises(ConfigError) as e:
        OpenAIProvider.validate(raw, WHERE)
    assert str(e.value).startswith(message)


def test_validate_warns_about_unknown_keys():
    _, warnings = OpenAIProvider.validate(
        {"plugin": "openai", "base_url": "http://x/v1", "model": "m", "max_token": 5}, WHERE)
    assert warnings == [f"{WHERE}.max_token: unknown key; did you mean 'max_tokens'?"]


def test_building_checks_required_keys():
    # Built directly (as the core does), the provider still refuses a missing base_url.
    config = {key: setting.default for key, setting in OpenAIProvider.settings.items()}
    config.update(plugin="openai", model="m")
    with pytest.raises(ConfigError) as e:
        OpenAIProvider("local", config, wm=None)
    assert str(e.value).startswith("providers.local.base_url: required")
    raw = {"plugin": "openai", "base_url": "http://localhost:11434/v1", "model": "m", "timeout": 5}
    assert OpenAIProvider("local", raw, wm=None).config["timeout"] == 5.0  # raw values get checked too


def test_plugin_registers_the_openai_provider():
    pm = pluggy.PluginManager("wellmate")
    pm.add_hookspecs(wellmate.Hookspecs)
    pm.register(provider_openai)
    assert wellmate.Registry.collect(pm, "register_providers", "provider plugin") == {"openai": OpenAIProvider}


def test_importing_and_building_the_provider_does_not_import_openai():
    # As the loader imports it: a built-in module imports the libraries it shares by package name.
    code = ("import sys, wellmate; wellmate.builtin_plugins_package(); "
            "from wellmate_plugins.provider_openai import OpenAIProvider as P; "
            "P('local', {'base_url': 'http://localhost:11434/v1', 'model': 'm'}, None); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('openai', 'httpx2', 'httpx')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
