"""The WeChat reminder channel, ``wechat``: a mini-program subscribe message (订阅消息).

The mini-program asks the user with ``wx.requestSubscribeMessage`` for the template in
``reminders.wechat.template_id``; each "allow" lets the server send one message. Sending:

- an access token from ``POST cgi-bin/stable_token`` ``{grant_type: client_credential, appid,
  secret}`` (the AppID and AppSecret of WeChat login, ``auth.wechat``), cached until five
  minutes before it expires;
- ``POST cgi-bin/message/subscribe/send?access_token=...`` with ``{touser: openid, template_id,
  page, miniprogram_state, lang, data: {field: {value}}}``. Template fields are filled from
  ``reminders.wechat.fields`` and cut to WeChat's length limits (a thing.N field takes 20
  characters), since a value too long is refused with 47003.

WeChat answers HTTP 200 with ``{"errcode", "errmsg"}``. An invalid or expired token (40001,
42001, 40014) gets the token refreshed and the message resent, once. Every other error is
recorded in the reminder's deliveries and not retried: a refused message (43101: the user did
not allow it, or used up their allowances) would be refused again, and a retry after a timeout
could send it twice. A token that cannot be had is not asked for again for a minute, so a tick
with many reminders does not hammer WeChat.
"""

from __future__ import annotations

import logging
import re
import threading
from datetime import datetime, timedelta, timezone

from wellmate import ConfigError, Setting, hookimpl

log = logging.getLogger("wellmate.delivery_wechat")

SOURCES = ("title", "text", "note", "time", "date", "agent_title", "name")
# The longest value each kind of template field takes (订阅消息 "模板参数值要求").
LIMITS = {"thing": 20, "phrase": 5, "name": 10, "character_string": 32, "number": 32, "letter": 32,
          "symbol": 5, "car_number": 8, "phone_number": 17, "amount": 32}
FIELD = re.compile(r"([a-z_]+?)(\d+)")
TOKEN_ERRORS = (40001, 42001, 40014)  # invalid, expired, malformed token: refresh once
TOKEN_MARGIN = timedelta(minutes=5)  # renew this long before WeChat says the token expires
TOKEN_RETRY_AFTER = timedelta(minutes=1)  # after stable_token failed, do not ask again before this
HINTS = {
    43101: "the user has not allowed this message, or has used up their allowances: the mini-program must "
           "ask again with wx.requestSubscribeMessage",
    47003: "WeChat refused a template field's value: check reminders.wechat.fields against the template",
    40037: "the template id is wrong (reminders.wechat.template_id)",
    40003: "WeChat does not know this user's openid for this mini-program",
    41030: "the page is wrong or not published (reminders.wechat.page)",
    45009: "the mini-program's daily quota of this API is used up",
    40013: "the AppID is wrong (auth.wechat.appid)",
    40125: "the AppSecret is wrong (auth.wechat.secret)",
    40164: "this server's IP address is not in the mini-program's API IP whitelist",
    -1: "WeChat was busy",
}


@hookimpl
def config_schema():
    return {"reminders": {"wechat": Setting({}, "WeChat subscribe messages (channel wechat).", dict, items={
        "template_id": Setting("", "Subscribe message template id from the mini-program admin console. "
                                   "Empty: the wechat channel is off."),
        "page": Setting("", "Mini-program page opened by tapping the message, e.g. pages/chat/chat."),
        "fields": Setting({"thing1": "title", "time2": "time"},
                          "Template field -> what fills it: " + ", ".join(SOURCES) + ".", dict),
        "miniprogram_state": Setting("formal", "Which version the message opens.",
                                     choices=["formal", "trial", "developer"]),
        "lang": Setting("zh_CN", "Language of the message.", choices=["zh_CN", "en_US", "zh_HK", "zh_TW"]),
    })}}


class SubscribeMessages:
    """Sends subscribe messages, keeping one access token for the whole server."""

    def __init__(self, wm):
        self.wm = wm
        self.settings = wm.config["reminders"]["wechat"]
        where = f"{wm.config_path.name}: reminders.wechat.fields"
        for name, source in self.settings["fields"].items():
            if not FIELD.fullmatch(str(name)):
                raise ConfigError(f"{where}.{name}: not a template field name such as thing1 or time2")
            if source not in SOURCES:
                raise ConfigError(f"{where}.{name}: {source!r} is not one of {', '.join(SOURCES)}")
        self._token: str | None = None
        self._token_until: datetime | None = None
        self._token_failure: tuple[datetime, str] | None = None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        reminders = self.wm.service("reminders")
        return reminders.now() if reminders else datetime.now(timezone.utc)

    @property
    def client(self):
        """The WeChat client of the wechat plugin (auth.wechat), or None if it is not loaded."""
        return self.wm.service("wechat")

    def unready(self, user) -> str | None:
        if self.client is None or not self.client.configured:
            return "WeChat is not set up on this server (auth.wechat.appid and auth.wechat.secret)"
        if not self.settings["template_id"]:
            return "no subscribe message template is set on this server (reminders.wechat.template_id)"
        if not user.get("wx_openid"):
            return "this account has not signed in with WeChat"
        return None

    # -- wire ------------------------------------------------------------------------------------
    def _post(self, path: str, body: dict) -> dict:
        """WeChat's JSON answer, or {"errcode": None, "errmsg": why} when there is none."""
        try:
            return self.client.call(path, body)
        except self.client.Unreachable as e:
            return {"errcode": None, "errmsg": str(e)}

    def access_token(self, refresh_from: str | None = None) -> str:
        """A valid token; ``refresh_from`` is a token WeChat just refused: get a new one unless
        that already happened. Raises LookupError with the reason when WeChat gives none."""
        with self._lock:
            now = self.now()
            if self._token and self._token != refresh_from and now < self._token_until:
                return self._token
            if self._token_failure and now < self._token_failure[0] + TOKEN_RETRY_AFTER:
                raise LookupError(self._token_failure[1])
            body = {"grant_type": "client_credential", "appid": self.client.appid, "secret": self.client.secret}
            if refresh_from:
                body["force_refresh"] = True  # the refused token may be the one stable_token still hands out
            reply = self._post("/cgi-bin/stable_token", body)
            token, expires_in = reply.get("access_token"), reply.get("expires_in")
            if not isinstance(token, str) or not token or not isinstance(expires_in, int):
                reason = "could not get an access token: " + describe(reply)
                log.error("stable_token: %s", reason)
                self._token_failure = (now, reason)
                raise LookupError(reason)
            self._token, self._token_failure = token, None
            self._token_until = now + max(timedelta(seconds=expires_in) - TOKEN_MARGIN, timedelta(seconds=expires_in) / 2)
            return token

    def send(self, openid: str, message: dict) -> dict:
        payload = {"touser": openid, "template_id": self.settings["template_id"],
                   "miniprogram_state": self.settings["miniprogram_state"], "lang": self.settings["lang"],
                   "data": self.data(message)}
        if self.settings["page"]:
            payload["page"] = self.settings["page"]
        refused = None
        for _ in range(2):
            try:
                token = self.access_token(refresh_from=refused)
            except LookupError as e:
                return {"status": "failed", "detail": str(e)}
            reply = self._post(f"/cgi-bin/message/subscribe/send?access_token={token}", payload)
            errcode = reply.get("errcode")
            if errcode == 0:
                return {"status": "sent", "detail": f"WeChat subscribe message, msgid {reply.get('msgid')}",
                        "msgid": reply.get("msgid")}
            if errcode not in TOKEN_ERRORS or refused is not None:
                break
            refused = token  # refreshed once, then given up
        result = {"status": "failed", "detail": describe(reply), "errcode": errcode}
        if refused is not None:
            result["detail"] += " (after a fresh access token)"
        return result

    def data(self, message: dict) -> dict:
        due = datetime.fromisoformat(message["due_local"])
        agent = self.wm.config["agents"].get(message["agent"], {})
        values = {"title": message["title"], "text": message["text"], "note": message["note"] or message["title"],
                  "time": due.strftime("%Y-%m-%d %H:%M"), "date": due.strftime("%Y-%m-%d"),
                  "agent_title": agent.get("title") or message["agent"], "name": message.get("user_name") or ""}
        data = {}
        for name, source in self.settings["fields"].items():
            kind = FIELD.fullmatch(name).group(1)
            data[name] = {"value": shorten(" ".join(str(values[source]).split()), LIMITS.get(kind))}
        return data


def shorten(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[:limit - 1] + "…" if limit > 1 else text[:limit]


def describe(reply: dict) -> str:
    errcode, errmsg = reply.get("errcode"), reply.get("errmsg") or ""
    if errcode is None:
        return errmsg or "no answer from WeChat"
    hint = HINTS.get(errcode)
    return f"{hint} (errcode {errcode}: {errmsg})" if hint else f"WeChat errcode {errcode}: {errmsg}"


@hookimpl
def register_services(register):
    # Built with the Wellmate, so a mistake in reminders.wechat stops startup.
    register("wechat_subscribe", SubscribeMessages)


@hookimpl
def register_channels(register):
    register("wechat", ready=lambda user, wm: wm.service("wechat_subscribe").unready(user))


@hookimpl
def deliver_reminder(message, user, wm):
    # Reminders.deliver has checked unready(user) already.
    return wm.service("wechat_subscribe").send(user["wx_openid"], {**message, "user_name": user.get("full_name") or user.get("username")})
