"""Reminder delivery over the wire: WeChat subscribe messages to a fake WeChat API, signed webhooks
to a fake receiver, and the scheduler's own background thread and lock."""

import hashlib
import hmac
import threading
import time

import pytest

import wellmate
from conftest import merge
from fakes.openai_server import FakeOpenAI
from fakes.webhook_receiver import WebhookReceiver
from fakes.wechat_server import FakeWeChat
from reminders_world import world  # noqa: F401,F811 (the fixture tests ask for)

SECRET = "webhook-test-secret"


def wechat_config(fake, **reminder_wechat):
    return {"auth": {"wechat": {"appid": fake.appid, "secret": fake.secret, "api_base": fake.url}},
            "reminders": {"wechat": {"template_id": "tmpl-reminder", "page": "pages/chat/chat",
                                     "fields": {"thing1": "title", "time2": "time", "thing3": "text"},
                                     **reminder_wechat}}}


def wx_user(w, fake, openid):
    r = w.client.post("/api/v1/auth/wx-login", {"code": fake.login(openid)})
    assert r.status == 200, r.text
    token = r.json["access_token"]
    assert w.client.put("/api/v1/users/settings", {"settings": {"timezone": "Asia/Shanghai"}}, token=token).status == 200
    return token


def posts(fake, path):
    return [r for r in fake.requests if r.method == "POST" and r.path == path]


# ---------------------------------------------------------------------------------------------
# WeChat
# ---------------------------------------------------------------------------------------------


def test_wechat_subscribe_message(world):
    with FakeWeChat() as fake:
        w = world("2026-11-20T01:00:00Z", overrides=wechat_config(fake))
        token = wx_user(w, fake, "o-alice")
        made = w.create(token, title="喝水", text="起来喝一杯温水，再走动五分钟，眼睛也休息一下吧", channels=["wechat", "inapp"],
                        rule={"kind": "daily", "times": ["10:00", "10:30"]})
        w.tick("2026-11-20T02:00:05Z")
        [sent] = fake.sent
        assert sent == {"touser": "o-alice", "template_id": "tmpl-reminder", "page": "pages/chat/chat",
                        "miniprogram_state": "formal", "lang": "zh_CN",
                        "data": {"thing1": {"value": "喝水"}, "time2": {"value": "2026-11-20 10:00"},
                                 "thing3": {"value": "起来喝一杯温水，再走动五分钟，眼睛也休…"}}}  # 20: thing.N's limit
        [token_request] = posts(fake, "/cgi-bin/stable_token")
        assert token_request.body == {"grant_type": "client_credential", "appid": fake.appid, "secret": fake.secret}
        deliveries = {d["channel"]: d for d in w.deliveries(token, made["id"])}
        assert deliveries["wechat"]["status"] == "sent" and deliveries["wechat"]["msgid"] == 3000000001
        assert deliveries["inapp"]["status"] == "sent"
        assert fake.tokens[-1] not in str(deliveries)  # the access token is never recorded

        w.tick("2026-11-20T02:30:05Z")  # half an hour later the token is still good: no new one
        assert len(fake.sent) == 2 and len(posts(fake, "/cgi-bin/stable_token")) == 1
        w.tick("2026-11-21T02:00:05Z")  # the next day it has expired: a fresh one first
        assert len(fake.sent) == 3 and len(posts(fake, "/cgi-bin/stable_token")) == 2


def test_a_channel_that_cannot_reach_the_user_at_firing_time_is_skipped_not_called(world):
    with FakeWeChat() as fake:
        w = world("2026-11-20T01:00:00Z", overrides=wechat_config(fake))
        token = wx_user(w, fake, "o-alice")
        made = w.create(token, title="喝水", channels=["wechat", "inapp"], rule={"kind": "daily", "times": ["10:00"]})
        w.stop()  # the admin takes the template out of config.yaml and restarts
        w.overrides = merge(w.overrides, {"reminders": {"wechat": {"template_id": ""}}})
        w.start()
        w.tick("2026-11-20T02:00:05Z")
        assert fake.sent == []
        deliveries = {d["channel"]: d for d in w.deliveries(token, made["id"])}
        assert deliveries["wechat"]["status"] == "skipped" and "reminders.wechat.template_id" in deliveries["wechat"]["detail"]
        assert deliveries["inapp"]["status"] == "sent"


def test_wechat_invalid_token_is_refreshed_once(world):
    with FakeWeChat() as fake:
        w = world("2026-11-20T01:00:00Z", overrides=wechat_config(fake))
        token = wx_user(w, fake, "o-alice")
        made = w.create(token, title="吃药", channels=["wechat"], rule={"kind": "daily", "times": ["10:00", "10:30"]})
        w.tick("2026-11-20T02:00:05Z")
        fake.revoke_tokens()  # stable_token still hands out the same one unless forced
        w.tick("2026-11-20T02:30:05Z")
        assert len(fake.sent) == 2
        sends = posts(fake, "/cgi-bin/message/subscribe/send")
        assert len(sends) == 3  # sent, refused with 40001, sent again
        assert posts(fake, "/cgi-bin/stable_token")[-1].body["force_refresh"] is True
        assert sends[-1].query["access_token"] == fake.tokens[-1] != sends[-2].query["access_token"]
        assert [d["status"] for d in w.deliveries(token, made["id"])] == ["sent", "sent"]

        # Refused again after the refresh: recorded, and no third try.
        fake.refuse_every_token = True
        w.tick("2026-11-21T02:00:05Z")
        assert len(posts(fake, "/cgi-bin/message/subscribe/send")) == 5
        latest = w.deliveries(token, made["id"])[0]
        assert latest["status"] == "failed" and latest["errcode"] == 40001 and "after a fresh access token" in latest["detail"]


def test_wechat_errors_are_recorded_without_retries(world):
    with FakeWeChat() as fake:
        w = world("2026-11-20T01:00:00Z", overrides=wechat_config(fake))
        token = wx_user(w, fake, "o-bob")
        made = w.create(token, title="量血压", channels=["wechat"], rule={"kind": "daily", "times": ["10:00"]})
        fake.refusing.add("o-bob")
        w.tick("2026-11-20T02:00:05Z")
        w.tick("2026-11-20T02:01:05Z")
        assert len(posts(fake, "/cgi-bin/message/subscribe/send")) == 1
        [failed] = w.deliveries(token, made["id"])
        assert failed["status"] == "failed" and failed["errcode"] == 43101
        assert "wx.requestSubscribeMessage" in failed["detail"]
        assert w.reminder(token, made["id"])["next_fire_at"] == "2026-11-21T02:00:00.000Z"  # it moved on

        fake.refusing.clear()
        fake.template_id = "another-template"
        w.tick("2026-11-21T02:00:05Z")
        assert w.deliveries(token, made["id"])[0]["errcode"] == 40037


def test_wechat_bad_secret_asks_for_a_token_once_per_minute(world):
    with FakeWeChat() as fake:
        w = world("2026-11-20T01:00:00Z", overrides=wechat_config(fake))
        token = wx_user(w, fake, "o-alice")
        w.overrides = wechat_config(fake)
        w.overrides["auth"]["wechat"]["secret"] = "wrong"  # the owner mistyped it, then restarted
        w.restart()
        made = [w.create(token, title=f"提醒{n}", channels=["wechat"], rule={"kind": "daily", "times": ["10:00"]})
                for n in range(3)]
        w.tick("2026-11-20T02:00:05Z")
        assert len(posts(fake, "/cgi-bin/stable_token")) == 1 and fake.sent == []
        for reminder in made:
            [failed] = w.deliveries(token, reminder["id"])
            assert failed["status"] == "failed" and "auth.wechat.secret" in failed["detail"]


def test_wechat_channel_needs_a_wechat_account(world):
    with FakeWeChat() as fake:
        w = world(overrides=wechat_config(fake))
        r = w.client.post("/api/v1/reminders", {"title": "x", "channels": ["wechat"],
                                                "rule": {"kind": "daily", "times": ["10:00"]}}, token=w.user())
        assert r.status == 400 and r.json["error"]["code"] == "channel_unavailable"
        assert "has not signed in with WeChat" in r.json["error"]["message"]


# ---------------------------------------------------------------------------------------------
# Webhook
# ---------------------------------------------------------------------------------------------


def webhook_config(receiver, **extra):
    return {"reminders": {"webhook": {"url": receiver.url, "secret": SECRET, "timeout": 2, "retries": 2,
                                      "backoff_seconds": 0.01, **extra}}}


def signature(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_webhook_is_signed_and_retried(world):
    with WebhookReceiver(statuses=[503, 500]) as receiver:
        w = world("2026-11-20T01:00:00Z", overrides=webhook_config(receiver))
        token = w.user(full_name="爱丽丝")
        made = w.create(token, title="喝水", note="200 ml", channels=["webhook"], rule={"kind": "daily", "times": ["10:00"]})
        w.tick("2026-11-20T02:00:05Z")
        assert len(receiver.requests) == 3
        first = receiver.requests[0]
        for request in receiver.requests:
            assert request.path == "/hooks/wellmate" and request.body == first.body
            assert request.headers["x-wellmate-signature"] == signature(request.body)
            assert request.headers["x-wellmate-delivery"] == f"{made['id']}@2026-11-20T02:00:00.000Z"
            assert request.headers["x-wellmate-event"] == "reminder"
            assert request.headers["content-type"] == "application/json; charset=utf-8"
        payload = first.json
        assert payload["event"] == "reminder" and payload["delivery"] == f"{made['id']}@2026-11-20T02:00:00.000Z"
        assert payload["title"] == "喝水" and payload["text"] == "喝水" and payload["note"] == "200 ml"
        assert payload["due_at"] == "2026-11-20T02:00:00.000Z" and payload["due_local"] == "2026-11-20T10:00:00+08:00"
        assert payload["reminder"]["id"] == made["id"] and payload["user"]["full_name"] == "爱丽丝"
        assert "爱丽丝".encode() in first.body  # UTF-8, not \\u escapes
        [sent] = w.deliveries(token, made["id"])
        assert sent["status"] == "sent" and sent["attempts"] == 3 and sent["http_status"] == 200


@pytest.mark.parametrize("receiver_options, attempts, says", [
    ({"statuses": [404]}, 1, "HTTP 404 after 1 attempt(s)"),  # a 4xx is not retried
    ({"default_status": 503}, 3, "HTTP 503 after 3 attempt(s)"),  # retries: 2
])
def test_webhook_failures_are_recorded(world, receiver_options, attempts, says):
    with WebhookReceiver(**receiver_options) as receiver:
        w = world("2026-11-20T01:00:00Z", overrides=webhook_config(receiver))
        token = w.user()
        made = w.create(token, title="喝水", channels=["webhook", "inapp"], rule={"kind": "daily", "times": ["10:00"]})
        w.tick("2026-11-20T02:00:05Z")
        w.tick("2026-11-20T02:01:05Z")
        assert len(receiver.requests) == attempts
        deliveries = {d["channel"]: d for d in w.deliveries(token, made["id"])}
        assert deliveries["webhook"]["status"] == "failed" and says in deliveries["webhook"]["detail"]
        assert deliveries["inapp"]["status"] == "sent"  # one channel failing does not stop the others


def test_webhook_timeout_is_retried(world):
    with WebhookReceiver(stall_seconds=5.0, stalls=1) as receiver:  # the stall ends when it stops
        w = world("2026-11-20T01:00:00Z", overrides=webhook_config(receiver, timeout=1))
        token = w.user()
        made = w.create(token, title="喝水", channels=["webhook"], rule={"kind": "daily", "times": ["10:00"]})
        w.tick("2026-11-20T02:00:05Z")
        [sent] = w.deliveries(token, made["id"])
        assert sent["status"] == "sent" and sent["attempts"] == 2


@pytest.mark.parametrize("webhook, says", [
    ({"url": "http://127.0.0.1:9/hook"}, "reminders.webhook.secret: required when url is set"),
    ({"url": "ftp://example.com/x", "secret": "s"}, "reminders.webhook.url: must be an http:// or https:// address"),
    ({"url": "http://127.0.0.1:99999/hook", "secret": "s"}, "reminders.webhook.url: must be an http:// or https://"),
])
def test_webhook_config_mistakes_stop_startup(make_wm, webhook, says):
    with pytest.raises(wellmate.ConfigError, match=says.replace(".", r"\.").replace("/", "/")):
        make_wm({"reminders": {"webhook": webhook}})


# ---------------------------------------------------------------------------------------------
# The scheduler's thread and lock
# ---------------------------------------------------------------------------------------------


def wait_until(condition, what, seconds=15):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def scheduler_threads():
    return [t for t in threading.enumerate() if t.name == "wellmate-scheduler"]


def test_the_background_tick_delivers_once(world):
    w = world("2026-11-20T01:59:00Z", overrides={"reminders": {"tick_seconds": 0.05}})
    token = w.user()
    made = w.create(token, title="喝水", rule={"kind": "daily", "times": ["10:00"]})
    w.restart()
    w.wm.start()
    w.wm.start()  # a second start changes nothing
    assert len(scheduler_threads()) == 1
    health = w.client.get("/api/v1/test/health").json
    assert health["scheduler_running"] is True and health["next_reminder_at"] == "2026-11-20T02:00:00.000Z"
    w.clock.set("2026-11-20T02:00:00Z")  # the thread's next tick sees it due
    wait_until(lambda: w.reminder_messages(token), "the reminder message")
    ticks = w.wm.service("reminders").ticks
    wait_until(lambda: w.wm.service("reminders").ticks >= ticks + 3, "three more ticks")
    assert len(w.reminder_messages(token)) == 1
    assert w.reminder(token, made["id"])["next_fire_at"] == "2026-11-21T02:00:00.000Z"
    assert w.client.get("/api/v1/test/health").json["next_reminder_at"] == "2026-11-21T02:00:00.000Z"
    w.stop()
    assert scheduler_threads() == []


def test_a_second_wellmate_on_the_same_data_does_not_fire(make_wm):
    first = make_wm({"reminders": {"tick_seconds": 0.05}}, start=True)
    second = make_wm({"reminders": {"tick_seconds": 0.05}}, start=True)
    assert first.service("scheduler").running is True
    assert second.service("scheduler").running is False
    assert "scheduler.lock" in second.service("scheduler").not_running_because
    assert len(scheduler_threads()) == 1
    first.close()  # the lock goes with it: a server started now would fire
    third = make_wm({"reminders": {"tick_seconds": 0.05}}, start=True)
    assert third.service("scheduler").running is True


def test_reminders_enabled_false_runs_no_thread(make_wm):
    wm = make_wm({"reminders": {"enabled": False}}, start=True)
    assert wm.service("scheduler") is None and scheduler_threads() == []


def test_a_stalled_webhook_holds_up_only_its_own_delivery(world):
    """Alice's reminder goes to a webhook receiver that does not answer; Bob's, due in the same
    tick, is delivered meanwhile. Alice's lateness is counted when hers is finally delivered."""
    with WebhookReceiver(stall_seconds=120, stalls=1) as receiver:
        w = world("2026-11-20T01:00:00Z", overrides=webhook_config(receiver, timeout=60, retries=0))
        alice, bob = w.user("alice"), w.user("bob")
        hers = w.create(alice, title="喝水", channels=["webhook"], rule={"kind": "daily", "times": ["09:59"]})
        his = w.create(bob, title="吃药", channels=["inapp"], rule={"kind": "daily", "times": ["10:00"]})
        w.clock.set("2026-11-20T02:00:00Z")  # hers is first in the tick: due a minute earlier
        tick = threading.Thread(target=w.wm.service("reminders").tick)
        tick.start()
        wait_until(lambda: w.deliveries(bob, his["id"]), "Bob's delivery")
        assert len(receiver.requests) == 1 and w.deliveries(alice, hers["id"]) == []  # hers still stalled
        [sent] = w.deliveries(bob, his["id"])
        assert sent["status"] == "sent" and sent["late_seconds"] == 0
        assert sent["delivered_at"] == "2026-11-20T02:00:00.000Z"
        assert len(w.reminder_messages(bob)) == 1

        # A minute and a half later the next tick comes while hers is still being delivered: it
        # is not fired again.
        w.clock.advance(seconds=90)
        tick.join()
        w.wm.service("reminders").tick()
        assert len(receiver.requests) == 1
        receiver.release()
        assert w.wm.service("reminders").settle(60)
        [delivered] = w.deliveries(alice, hers["id"])
        assert delivered["status"] == "sent" and delivered["late_seconds"] == 150  # 09:59 -> 10:01:30
        assert delivered["delivered_at"] == "2026-11-20T02:01:30.000Z"
        assert receiver.requests[0].json["late_seconds"] == 60  # as of when it was sent
        assert w.reminder(alice, hers["id"])["next_fire_at"] == "2026-11-21T01:59:00.000Z"
        w.tick()
        assert len(receiver.requests) == 1 and len(w.deliveries(alice, hers["id"])) == 1


def test_a_slow_model_phrasing_one_reminder_holds_up_no_plain_reminder(world):
    """Alice's reminder is to be phrased by a model that takes two minutes to answer; Bob's plain
    one, due in the same tick, is delivered meanwhile (one worker of each kind)."""
    with FakeOpenAI(reply="该喝水啦～", mode="slow_first_token", first_token_delay=120) as upstream:
        w = world("2026-11-20T01:00:00Z", overrides={
            "providers": {"upstream": {"plugin": "openai", "base_url": upstream.url, "model": "m", "api_key": "k"}},
            "agents": {"mental": {"providers": ["upstream", "offline"]}},
            "reminders": {"delivery_threads": 1}})
        alice, bob = w.user("alice"), w.user("bob")
        hers = w.create(alice, title="喝水", text="该喝水啦", phrase=True, agent="mental",
                        rule={"kind": "daily", "times": ["09:59"]})
        his = w.create(bob, title="吃药", rule={"kind": "daily", "times": ["10:00"]})
        w.clock.set("2026-11-20T02:00:00Z")  # hers is first in the tick: due a minute earlier
        w.wm.service("reminders").tick()
        wait_until(lambda: upstream.requests, "the model asked to phrase Alice's reminder")
        wait_until(lambda: w.deliveries(bob, his["id"]), "Bob's delivery")
        assert w.deliveries(alice, hers["id"]) == []  # still being phrased
        assert w.deliveries(bob, his["id"])[0]["status"] == "sent"
    assert w.wm.service("reminders").settle(60)  # the fake stopped: hers went out with the fixed text
    assert w.deliveries(alice, hers["id"])[0]["status"] == "sent"


def test_reminders_of_one_tick_delivered_side_by_side_share_one_new_session(world):
    w = world("2026-11-20T01:00:00Z")
    token = w.user()
    for n in range(6):
        w.create(token, title=f"提醒{n}", rule={"kind": "daily", "times": ["10:00"]})
    w.tick("2026-11-20T02:00:00Z")
    sessions = w.client.get("/api/v1/health/sessions", token=token).json["items"]
    assert len(sessions) == 1 and sessions[0]["unread"] == 6
    assert len(w.reminder_messages(token)) == 6


def test_shutdown_leaves_a_stuck_delivery_and_it_is_resent_after_the_restart(world):
    with WebhookReceiver(stall_seconds=300, stalls=1) as receiver:
        w = world("2026-11-20T01:00:00Z", overrides={**webhook_config(receiver, timeout=120, retries=0),
                                                    "server": {"shutdown_seconds": 1}})
        token = w.user()
        made = w.create(token, title="喝水", channels=["webhook", "inapp"], rule={"kind": "daily", "times": ["10:00"]})
        w.clock.set("2026-11-20T02:00:00Z")
        w.wm.service("reminders").tick()
        wait_until(lambda: receiver.requests and w.deliveries(token, made["id"]), "the webhook request and inapp")
        w.restart()  # shutdown gives up on the stuck POST (after reminders' bound) and does not hang
        receiver.release()  # the old POST is answered now, after the shutdown: nothing records it
        w.tick("2026-11-20T02:00:30Z")
        assert [r.headers["x-wellmate-delivery"] for r in receiver.requests] == [
            f"{made['id']}@2026-11-20T02:00:00.000Z"] * 2  # the same fire_id
        deliveries = w.deliveries(token, made["id"])
        assert sorted(d["channel"] for d in deliveries) == ["inapp", "webhook"]  # once each
        assert len(w.reminder_messages(token)) == 1
        assert w.reminder(token, made["id"])["next_fire_at"] == "2026-11-21T02:00:00.000Z"
