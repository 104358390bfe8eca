"""WeChat mini-program login (docs/api.md: POST /auth/wx-login; docs/miniprogram.md).

The mini-program calls ``wx.login()`` and sends us the one-time code; we trade it at WeChat's
``sns/jscode2session`` for the user's openid (and unionid, when the mini-program is bound to an
open-platform account), create the account on the first login and link the ids to it.

WeChat's ``session_key`` is dropped the moment the answer is read: Wellmate decrypts no WeChat
data (phone number, WeRun steps), and a key that is not kept cannot leak.

Other plugins use ``wm.service("wechat")`` (a `WeChatClient`) to check that a fresh code belongs to a user,
e.g. before deleting an account that has no password.
"""

import logging
import threading
import urllib.parse

from wellmate import ApiError, ConfigError, Setting, client_address, field, hookimpl, new_id, now_iso
from wellmate_plugins import _http
from wellmate_plugins._openapi import Api, boolean, obj, text
from wellmate_plugins.accounts import accounts_for
from wellmate_plugins.auth import SIGNED_IN, account_disabled, required

log = logging.getLogger("wellmate.wechat")

# errcode -> (HTTP status, our error code, message). WeChat's own list: "小程序登录 code2Session".
ERRORS = {
    40029: (401, "invalid_wx_code", "The login code is not valid; call wx.login() again and send the new code."),
    40163: (401, "invalid_wx_code", "The login code was already used; call wx.login() again and send the new code."),
    41008: (401, "invalid_wx_code", "WeChat got no login code; call wx.login() and send its code."),
    45011: (429, "wechat_rate_limited", "WeChat's login quota for this mini-program is used up for this minute; try again in a minute."),
    40226: (403, "wechat_login_blocked", "WeChat refused to log this user in (its risk control, errcode 40226)."),
    -1: (502, "wechat_unavailable", "WeChat is busy; try again in a moment."),
    # Our own configuration is wrong: the owner must fix config.yaml, the user can do nothing.
    40013: (503, "wechat_misconfigured", "The server's WeChat AppID is wrong (auth.wechat.appid); the server log says more."),
    40125: (503, "wechat_misconfigured", "The server's WeChat AppSecret is wrong (auth.wechat.secret); the server log says more."),
    40002: (503, "wechat_misconfigured", "The server sent WeChat a bad request (grant_type); the server log says more."),
}
RATE_LIMIT_RETRY_AFTER = 60  # WeChat's quota is per minute


@hookimpl
def config_schema():
    return {"auth": {"wechat": Setting({}, "WeChat mini-program login.", dict, items={
        "appid": Setting("", "The mini-program's AppID. Empty: wx-login answers 503 wechat_not_configured."),
        "secret": Setting("", "The mini-program's AppSecret; keep it in the environment: ${WECHAT_SECRET}."),
        "api_base": Setting("https://api.weixin.qq.com", "WeChat's API address (tests point it at a fake)."),
        "timeout": Setting(5.0, "Seconds to wait for WeChat's answer.", float, min=0.1, max=60),
    })}}


class WeChatError(Exception):
    """jscode2session did not give an openid. Carries the answer for our client."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def api_error(self, status: int | None = None) -> ApiError:
        headers = {"Retry-After": str(RATE_LIMIT_RETRY_AFTER)} if self.status == 429 else None
        return ApiError(status or self.status, self.code, self.message, headers=headers)


class WeChatUnreachable(Exception):
    """No JSON answer from WeChat: a connection error, a timeout, an HTTP error, or a page."""


class WeChatClient:
    """Calls WeChat's API with the stdlib, no dependency: one GET per login here, and the
    subscribe messages of plugins/delivery_wechat.py (the service ``wechat``)."""

    Unreachable = WeChatUnreachable  # for plugins that use the service without importing this module

    def __init__(self, settings: dict, where: str):
        self.appid, self.secret = settings["appid"], settings["secret"]
        self.api_base, self.timeout = settings["api_base"].rstrip("/"), settings["timeout"]
        try:  # a port above 65535 or no host would otherwise fail at the first login, as a 500
            _http.check_url(self.api_base)
        except ValueError:
            raise ConfigError(f"{where}.api_base: must be an https:// (or http://) address, "
                              f"got {settings['api_base']!r}") from None

    @property
    def configured(self) -> bool:
        return bool(self.appid and self.secret)

    def call(self, path: str, body: dict | None = None) -> dict:
        """GET ``path`` (POST ``body`` as JSON if given) on the WeChat API; its JSON object.
        Raise WeChatUnreachable saying why when there is none. The path may hold the AppSecret
        or an access token: it is never logged, and the reason never includes it."""
        try:
            # The body is JSON even though WeChat labels it text/plain; an HTTP error or a page
            # (a proxy's) is no answer.
            return _http.call_json("GET" if body is None else "POST", f"{self.api_base}{path}", body,
                                   timeout=self.timeout, name="WeChat")
        except _http.HttpError as e:
            raise WeChatUnreachable(str(e)) from None

    def code_to_session(self, code: str) -> dict:
        """``{"openid", "unionid"}`` (unionid may be None) for a ``wx.login()`` code, or raise
        WeChatError."""
        query = urllib.parse.urlencode({"appid": self.appid, "secret": self.secret, "js_code": code,
                                        "grant_type": "authorization_code"})
        unavailable = "WeChat's login service did not answer properly; try again in a moment."
        try:
            reply = self.call(f"/sns/jscode2session?{query}")
        except WeChatUnreachable as e:
            log.warning("jscode2session failed: %s", e)
            raise WeChatError(502, "wechat_unavailable", unavailable) from None
        errcode = reply.get("errcode") or 0
        if errcode:
            log.log(logging.ERROR if errcode in (40013, 40125, 40002) else logging.INFO,
                    "jscode2session errcode %s: %s", errcode, reply.get("errmsg"))
            status, code, message = ERRORS.get(errcode, (
                502, "wechat_error", f"WeChat refused the login (errcode {errcode}); try again."))
            raise WeChatError(status, code, message)
        openid, unionid = reply.get("openid"), reply.get("unionid")
        if not isinstance(openid, str) or not openid:
            log.warning("jscode2session answered without an openid")
            raise WeChatError(502, "wechat_unavailable", unavailable)
        return {"openid": openid, "unionid": unionid if isinstance(unionid, str) and unionid else None}

    def openid_for(self, code: str) -> str:
        """The openid a fresh ``wx.login()`` code belongs to, for routes that ask a WeChat-only
        user to prove who they are. Raises the ApiError to answer."""
        if not self.configured:
            raise self.not_configured()
        try:
            return self.code_to_session(code)["openid"]
        except WeChatError as e:
            raise e.api_error()

    def not_configured(self) -> ApiError:
        return ApiError(503, "wechat_not_configured",
                        "WeChat login is not set up on this server: set auth.wechat.appid and auth.wechat.secret "
                        "in config.yaml (see docs/miniprogram.md).")


class WeChatAccounts:
    """Finds or creates the user for a WeChat identity (through the service ``accounts``)."""

    def __init__(self, wm, accounts):
        self.wm, self.accounts = wm, accounts
        # A mini-program often calls wx.login twice at launch (app and page): two first logins at
        # once must make one account, not two. One process serves, so a lock is enough.
        self._lock = threading.Lock()

    def user_for(self, openid: str, unionid: str | None) -> tuple[dict, bool]:
        accounts = self.accounts
        with self._lock:
            user = accounts.find_by("wx_openid", openid)
            if user is None and unionid:  # known through another app of the same open platform
                user = accounts.find_by("wx_unionid", unionid)
            if user is None:
                if not self.wm.config["auth"]["allow_registration"]:
                    raise ApiError(403, "registration_closed",
                                   "This server does not accept new accounts (auth.allow_registration).")
                user = {"id": new_id(), "username": None, "password_hash": None, "full_name": "",
                        "gender": None, "age": None, "birth_date": None, "role": "user", "settings": {},
                        "disabled": False, "created_at": now_iso(), "wx_openid": openid}
                if unionid:
                    user["wx_unionid"] = unionid
                return accounts.create(user), True
            changes = {}
            if user.get("wx_openid") != openid:
                changes["wx_openid"] = openid
            if unionid and user.get("wx_unionid") != unionid:
                changes["wx_unionid"] = unionid
            if changes:
                user = accounts.update(user["id"], changes) or user
            return user, False


class WeChatLogin:
    """The service ``wechat_login``: a ``wx.login()`` code to its account (made on the first
    login), for every route that signs a mini-program in with one."""

    def __init__(self, wm):
        self.client = wm.service("wechat")
        self.auth = required(wm, "wechat")
        self.accounts = WeChatAccounts(wm, accounts_for(wm, "wechat"))

    def sign_in(self, code: str) -> tuple[dict, bool]:
        """(the user, whether this login created it); the ApiError to answer otherwise."""
        client, auth = self.client, self.auth
        if not client.configured:
            raise client.not_configured()
        address = client_address()
        # Bad codes count against the address like wrong passwords: a flood of them would spend
        # the mini-program's WeChat quota (45011) and lock every user out.
        auth.throttle.check(None, address)
        try:
            identity = client.code_to_session(code)
        except WeChatError as e:
            if e.status == 401:
                auth.throttle.failed(None, address)
            raise e.api_error()
        user, created = self.accounts.user_for(identity["openid"], identity["unionid"])
        if user.get("disabled"):
            raise account_disabled()
        if created:
            log.info("new WeChat user %s", user["id"])
        return user, created


def wechat_client(wm) -> WeChatClient:
    """The service ``wechat``."""
    client = WeChatClient(wm.config["auth"]["wechat"], f"{wm.config_path.name}: auth.wechat")
    if bool(client.appid) != bool(client.secret):
        log.warning("auth.wechat: set both appid and secret, or neither; WeChat login is off until then")
    return client


@hookimpl
def register_services(register):
    register("wechat", wechat_client)
    register("wechat_login", WeChatLogin)


@hookimpl
def routes(app, wm):
    client, auth, wechat_login = wm.service("wechat"), required(wm, "wechat"), wm.service("wechat_login")

    @app.post("/api/v1/auth/wx-login", api=Api(
        "Sign in with a WeChat mini-program's wx.login() code (the first time creates the account)", auth="public",
        body=obj({"code": text(128)}, required=["code"], example={"code": "081Kq4Ga1..."}),
        responses={200: obj({**SIGNED_IN["properties"], "created": boolean(description="this login created the account")},
                            required=SIGNED_IN["required"] + ["created"])},
        errors={401: "invalid_wx_code: call wx.login() again", 403: "the account is disabled, or WeChat blocked the login",
                429: "too many bad codes from this address, or WeChat's quota", 502: "WeChat did not answer",
                503: "WeChat login is not configured here (auth.wechat)"}))
    def wx_login():
        if not client.configured:  # before the body is read: the same 503 whatever was sent
            raise client.not_configured()
        user, created = wechat_login.sign_in(field(wm.json_body(), "code", max_len=128))
        return auth.signed_in(user, created=created)
