"""The webhook reminder channel, ``webhook``: a JSON POST to the URL in ``reminders.webhook.url``
(Home Assistant, ntfy, a bot of your own...).

Every request carries

    Content-Type: application/json; charset=utf-8
    X-Wellmate-Event: reminder
    X-Wellmate-Delivery: <fire_id>         the same for retries and for a resend after a crash:
                                           a receiver that keeps it can drop duplicates
    X-Wellmate-Signature: sha256=<hex>     HMAC-SHA256 of the raw body with reminders.webhook.secret

A receiver checks the signature over the bytes it received, before parsing them:

    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    hmac.compare_digest(expected, request.headers["X-Wellmate-Signature"])

A 2xx answer is success. A connection error, a timeout, 408, 425, 429 or 5xx is tried again, up to
``retries`` more times, waiting ``backoff_seconds``, then twice that, and so on; another answer
(a 4xx, a redirect) is a failure at once. Either way the outcome is recorded in the reminder's
deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import urllib.parse

import wellmate
from wellmate import ConfigError, Setting, hookimpl, json_dumps, now_iso
from wellmate_plugins import _http

log = logging.getLogger("wellmate.delivery_webhook")

RETRY_STATUSES = {408, 425, 429}


@hookimpl
def config_schema():
    return {"reminders": {"webhook": Setting({}, "Reminders as signed JSON POSTs (channel webhook).", dict, items={
        "url": Setting("", "Where reminders are POSTed. Empty: the webhook channel is off."),
        "secret": Setting("", "Key of the X-Wellmate-Signature HMAC; required with url. Use ${VAR}."),
        "timeout": Setting(5.0, "Seconds to wait for the receiver's answer.", float, min=0.1, max=120),
        "retries": Setting(3, "Further attempts after a connection error, timeout, 408, 425, 429 or 5xx.",
                           int, min=0, max=10),
        "backoff_seconds": Setting(2.0, "Wait before the first retry; doubled for each next one.",
                                   float, min=0, max=600),
    })}}


class Webhook:
    def __init__(self, settings: dict, where: str):
        self.settings = settings
        self.url = settings["url"]
        if self.url:
            try:
                _http.check_url(self.url)
            except ValueError:
                raise ConfigError(f"{where}.url: must be an http:// or https:// address, got {self.url!r}") from None
            if not settings["secret"]:
                raise ConfigError(f"{where}.secret: required when url is set, so the receiver can tell "
                                  "the request is ours; e.g. secret: ${WELLMATE_WEBHOOK_SECRET}")
            self.host = urllib.parse.urlsplit(self.url).hostname  # named in delivery details, never the path

    def body(self, reminder: dict, message: dict, user: dict) -> bytes:
        payload = {
            "event": "reminder", "delivery": message["fire_id"], "sent_at": now_iso(),
            "due_at": message["due_at"], "due_local": message["due_local"], "late_seconds": message["late_seconds"],
            "title": message["title"], "text": message["text"], "note": message["note"], "agent": message["agent"],
            "reminder": {key: reminder.get(key) for key in ("id", "title", "rule", "timezone", "channels")},
            "user": {"id": user["id"], "username": user.get("username"), "full_name": user.get("full_name") or ""},
        }
        return json_dumps(payload).encode("utf-8")

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.settings["secret"].encode("utf-8"), body, hashlib.sha256).hexdigest()

    def post(self, body: bytes, delivery: str) -> int:
        """One attempt: the HTTP status. Redirects are not followed (the signed body stays here)."""
        return _http.request("POST", self.url, body, headers={
            "Content-Type": "application/json; charset=utf-8", "User-Agent": f"Wellmate/{wellmate.__version__}",
            "X-Wellmate-Event": "reminder", "X-Wellmate-Delivery": delivery,
            "X-Wellmate-Signature": self.sign(body)}, timeout=self.settings["timeout"], max_body=64 * 1024,
            name="the receiver").status

    def deliver(self, reminder: dict, message: dict, user: dict, wait) -> dict:
        """POST with retries; ``wait(seconds)`` sleeps between them and returns True to give up
        (the server is stopping)."""
        body = self.body(reminder, message, user)
        retries, delay = self.settings["retries"], self.settings["backoff_seconds"]
        attempt, status, error = 0, None, ""
        while True:
            attempt += 1
            try:
                status = self.post(body, message["fire_id"])
            except _http.HttpError as e:  # refused, reset, timed out
                status, error = None, str(e)
                retry = True
            else:
                if 200 <= status < 300:
                    return {"status": "sent", "detail": f"POST {self.host} answered {status}",
                            "http_status": status, "attempts": attempt}
                error = f"HTTP {status}"
                retry = status in RETRY_STATUSES or status >= 500
            if not retry or attempt > retries:
                break
            log.info("webhook attempt %s failed (%s); trying again in %ss", attempt, error, delay)
            if wait(delay):
                error += "; stopped retrying: the server is shutting down"
                break
            delay *= 2
        return {"status": "failed", "detail": f"POST {self.host}: {error} after {attempt} attempt(s)",
                "http_status": status, "attempts": attempt}


@hookimpl
def register_services(register):
    # Built with the Wellmate, so a mistake in reminders.webhook stops startup.
    register("webhook", lambda wm: Webhook(wm.config["reminders"]["webhook"], f"{wm.config_path.name}: reminders.webhook"))


@hookimpl
def register_channels(register):
    register("webhook", ready=ready)


def ready(user, wm):
    return None if wm.service("webhook").url else "no webhook is set up on this server (reminders.webhook.url)"


@hookimpl
def deliver_reminder(reminder, message, user, wm):
    # Reminders.deliver has checked ready(): a url is set.
    return wm.service("webhook").deliver(reminder, message, user, wm.service("reminders").wait)
