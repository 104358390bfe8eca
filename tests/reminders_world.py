"""Helpers for the reminder tests: a clock the test moves, and a `World` of Wellmates on one data
folder behind one real waitress server, restarted at will."""

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from conftest import Served


def z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Clock:
    """The reminders' clock, moved by the test."""

    def __init__(self, start: str):
        self.now = z(start)

    def __call__(self):
        return self.now

    def set(self, text: str):
        self.now = z(text)

    def advance(self, **delta):
        self.now += timedelta(**delta)


class World:
    """Wellmates on one data folder, one at a time, behind one real waitress server: `restart`
    closes the running Wellmate (scheduler, storage and all) and builds another on the same
    files. The HTTP server stays up between them: it is transport, not state."""

    def __init__(self, make_wm, clock, overrides=None):
        self.make_wm, self.clock, self.overrides = make_wm, clock, overrides
        self.start()
        # The server's settings are the first app's; each request goes to whichever app is current.
        first = self.wm
        current_app = SimpleNamespace(server_app=lambda environ, start_response: self.wm.server_app(environ, start_response),
                                      waitress_options=first.waitress_options, max_body=first.max_body, config=first.config)
        self.served = Served(current_app)
        self.client = self.served.client

    def start(self, run_scheduler=False):
        self.wm = self.make_wm(self.overrides)
        self.wm.service("reminders").clock = self.clock
        if run_scheduler:
            self.wm.start()

    def stop(self):
        self.wm.close()

    def restart(self):
        self.stop()
        self.start()

    def close(self):
        self.served.stop()
        self.wm.close()

    def tick(self, at: str | None = None):
        if at:
            self.clock.set(at)
        self.wm.service("reminders").tick()
        assert self.wm.service("reminders").settle(60), "the tick's deliveries did not end"

    def user(self, name="alice", tz="Asia/Shanghai", **fields):
        settings = {"timezone": tz} if tz else {}
        return self.client.register(name, settings=settings, **fields)["access_token"]

    def create(self, token, **body):
        r = self.client.post("/api/v1/reminders", body, token=token)
        assert r.status == 201, r.text
        return r.json

    def reminder(self, token, reminder_id):
        r = self.client.get(f"/api/v1/reminders/{reminder_id}", token=token)
        assert r.status == 200, r.text
        return r.json

    def deliveries(self, token, reminder_id):
        r = self.client.get(f"/api/v1/reminders/{reminder_id}/deliveries?limit=100", token=token)
        assert r.status == 200, r.text
        return r.json["items"]

    def reminder_messages(self, token):
        """Every reminder message in the user's sessions, oldest first."""
        found = []
        for session in self.client.get("/api/v1/health/sessions", token=token).json["items"]:
            items = self.client.get(f"/api/v1/health/sessions/{session['id']}?limit=200", token=token).json
            found += [m for m in items["messages"]["items"] if m.get("reminder_id")]
        return sorted(found, key=lambda m: m["created_at"])


@pytest.fixture
def world(make_wm):
    worlds = []

    def build(start="2026-11-20T00:00:00Z", overrides=None):
        w = World(make_wm, Clock(start), overrides)
        worlds.append(w)
        return w

    yield build
    for w in worlds:
        w.close()
