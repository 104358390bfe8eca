"""Shared fixtures: a Wellmate built from the shipped config in a temp folder, served by a real
waitress server on 127.0.0.1, and a small HTTP client for it."""

import copy
import http.client
import json
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from served import Served as ServedApp  # noqa: E402
import wellmate  # noqa: E402

# Built-in modules (wellmate_plugins.*) importable in tests that use one without a Wellmate.
wellmate.builtin_plugins_package()


def merge(base: dict, extra: dict) -> dict:
    """Deep-merge extra into a copy of base (a value of None deletes the key)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def shipped_config(tmp: Path) -> dict:
    """config.yaml as shipped, in a temp folder with a copy of prompts/ (so tests may edit them),
    a temp data folder and an empty user plugins folder."""
    if not (tmp / "prompts").exists():
        shutil.copytree(ROOT / "prompts", tmp / "prompts")
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    config["server"]["port"] = 5000
    config["server"]["timezone"] = "UTC"  # not the machine's: the same days on every machine
    config["auth"]["secret"] = "test-secret-" + "x" * 32
    config["storage"]["path"] = str(tmp / "data")
    config["plugins"]["directory"] = str(tmp / "plugins")
    return config


class Client:
    """Just enough HTTP to talk JSON to a server, keeping status, headers and raw body."""

    def __init__(self, port: int):
        self.port = port

    def request(self, method, path, body=None, token=None, headers=None, raw: bytes | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = raw
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
        finally:
            conn.close()
        return Response(resp.status, dict(resp.getheaders()), payload)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path, body=None, **kw):
        return self.request("DELETE", path, body=body, **kw)

    def register(self, username="alice", password="correct horse", **fields):
        r = self.post("/api/v1/auth/register", {"username": username, "password": password, **fields})
        assert r.status == 201, r.text
        return r.json


def assert_error(r, status, code):
    """``r`` is the JSON error the README promises: this status, this code and a message."""
    assert r.status == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json["error"]["code"] == code, r.text
    assert r.json["error"]["message"]


class Response:
    def __init__(self, status, headers, body: bytes):
        self.status, self.headers, self.body = status, headers, body
        self.text = body.decode("utf-8", "replace")

    @property
    def json(self):
        return json.loads(self.body) if self.body else None


class Served(ServedApp):
    """A Wellmate app served as `serve` serves it on a free 127.0.0.1 port, with a client."""

    def __init__(self, wm, **options):
        super().__init__(wm, threads=8, **options)
        self.client = Client(self.port)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`wellmate.py --config PATH` in a child process, as a user runs it; started and answering."""

    def __init__(self, config_path, port: int, prefix=()):
        """``prefix``: a command to run it under (e.g. unshare, to run it as another user)."""
        import subprocess
        import time
        import urllib.request

        self.port = port
        self.proc = subprocess.Popen([*prefix, sys.executable, str(ROOT / "wellmate.py"), "--config", str(config_path)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/test/health", timeout=2) as r:
                    assert r.status == 200
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.kill()
                    raise AssertionError(f"the server did not start: {self.proc.stdout.read()}")
                time.sleep(0.05)

    def stop(self, timeout: float = 30) -> tuple[int | None, str]:
        """SIGTERM, as systemd stops it: (exit status, everything it printed); the status is None
        if it had not ended after ``timeout`` seconds (it is killed then)."""
        import signal
        import subprocess

        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            status = None
        self.proc.kill()
        self.proc.wait()
        return status, self.proc.stdout.read()


# Tests hash passwords at scrypt N=2^10, r=8, p=1 (1 MiB, ~2 ms) rather than production's N=2^14,
# r=8, p=5 (16 MiB, 0.18 s here and 0.6 s on a loaded CI machine), for each of the suite's
# registrations and logins. The hashes are real scrypt, stored and checked the same way;
# `production_password_cost` gives a test the production parameters back (test_security checks them).
TEST_SCRYPT = {"n": 2**10, "r": 8, "p": 1}


@pytest.fixture(autouse=True, scope="session")
def test_password_cost():
    import importlib

    scrypt = importlib.import_module("wellmate_plugins.auth").SCRYPT
    production = dict(scrypt)
    scrypt.update(TEST_SCRYPT)  # in place: the plugin reads it at every hash
    yield production
    scrypt.update(production)


@pytest.fixture
def production_password_cost(test_password_cost):
    """The production scrypt parameters for this test (its cost, its queue of hashes waiting)."""
    import importlib

    scrypt = importlib.import_module("wellmate_plugins.auth").SCRYPT
    scrypt.update(test_password_cost)
    yield
    scrypt.update(TEST_SCRYPT)


@pytest.fixture
def make_wm(tmp_path):
    """Build Wellmates from the shipped config plus overrides; every one is closed afterwards."""
    built = []

    def make(overrides: dict | None = None, start=False):
        config = merge(shipped_config(tmp_path), overrides or {})
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        wm = wellmate.create_app(path)
        built.append(wm)
        if start:
            wm.start()
        return wm

    yield make
    for wm in built:
        wm.close()


@pytest.fixture
def serve():
    """serve(wm, **waitress_overrides) -> Served; every server is stopped afterwards."""
    servers = []

    def start(wm, **options):
        served = Served(wm, **options)
        servers.append(served)
        return served

    yield start
    for served in servers:
        served.stop()


@pytest.fixture
def client(make_wm, serve):
    """A client for the shipped config on a temp data folder, over real HTTP."""
    return serve(make_wm()).client


@contextmanager
def served_shipped(tmp: Path):
    """The shipped config.yaml (see `shipped_config`) served on a free port, stopped and closed after."""
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(shipped_config(tmp), allow_unicode=True), encoding="utf-8")
    wm = wellmate.create_app(path)
    served = Served(wm)
    try:
        yield served
    finally:
        served.stop()
        wm.close()


def in_one_session(client, token: str, texts, agent: str = "physical") -> list[dict]:
    """The replies (JSON) to ``texts``, sent in order in one new chat session of ``agent``, over HTTP."""
    replies, session_id = [], None
    for text in texts:
        r = client.post(f"/api/v1/health/{agent}/chat", {"text": text, **({"session_id": session_id} if session_id else {})},
                        token=token)
        assert r.status == 200, r.text
        session_id = r.json["session_id"]
        replies.append(r.json)
    return replies


def last_user_label(client, token: str, session_id: str):
    """The emotion label stored with the user's last message of a session, over HTTP (None for no message)."""
    messages = client.get(f"/api/v1/health/sessions/{session_id}", token=token).json["messages"]
    messages = messages.get("items", messages) if isinstance(messages, dict) else messages
    users = [m for m in messages if m["role"] == "user"]
    return users[-1].get("emotion") if users else None


def cost_of(read, texts: list[str], rounds: int = 3, least: float = 0.05) -> list[float]:
    """CPU seconds one ``read(text)`` costs, for each of ``texts``: the least of ``rounds`` rounds, the texts taken in
    turn in each round (so a busy moment of the machine falls on all of them alike), each repeated in a round until it
    has taken ``least`` seconds (a read of 25,000 characters may take half a millisecond, too near the timer's grain).
    CPU time of this process, not wall time: other processes on a loaded machine do not count."""
    import time

    best = [float("inf")] * len(texts)
    for _ in range(rounds):
        for i, text in enumerate(texts):
            runs, started = 0, time.process_time()
            while True:
                read(text)
                runs += 1
                spent = time.process_time() - started
                if spent >= least:
                    break
            best[i] = min(best[i], spent / runs)
    return best


def assert_linear(read, make, size: int = 100_000, times: int = 4, allowed: float = 2.25) -> None:
    """Hostile input stays linear: ``read(make(size))`` costs at most ``allowed`` times the linear share of
    ``read(make(size // times))``. Speed itself is measured in bench/ (docs/benchmarks.md), not asserted here (a
    wall-clock bound fails on a loaded machine and passes a regression on a fast one); the ratio of two sizes does
    not depend on the machine. Four times the text: about four times the cost when linear, sixteen when quadratic,
    and an exponential regex never ends the small one; the bound, nine times (2.25 x 4), leaves room for caches and
    noise and none for a quadratic. ``make(n)``: a text of about ``n`` characters."""
    small, large = make(size // times), make(size)
    short, long = cost_of(read, [small, large])
    ratio = long / short if short else float("inf")
    assert ratio < allowed * len(large) / len(small), \
        f"{len(large)} characters cost {ratio:.1f}x {len(small)} ({long * 1000:.1f} ms, {short * 1000:.2f} ms): not linear"
