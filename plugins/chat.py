"""Chat with health agents (README, The API: Chat and Sessions): provider chains with fallback, SSE
streaming, sessions, emotion labels."""

import logging
import queue
import threading
import time
from collections import Counter

import bottle

from wellmate import (ApiError, ConfigError, ProviderError, Setting, StorageUnavailable, Turn, call_with_turn, field,
                      hookimpl, json_dumps, new_id, now_iso, paged, whole_text)
from wellmate_plugins._reply_emotion import ReplyEmotion, shown, user_label

log = logging.getLogger("wellmate.chat")


@hookimpl
def config_schema():
    return {"chat": {
        "max_message_chars": Setting(4000, "Longest user message accepted.", int, min=1, max=100000),
        "ping_seconds": Setting(10.0, "Seconds between ': ping' comments while a stream waits.", float, min=0.05, max=300),
        "max_turns_per_user": Setting(2, "Chat turns (streamed or not) one user may have in progress at once; "
                                         "more get 429 too_many_turns.", int, min=1, max=512),
        "reserve_threads": Setting(4, "Worker threads kept for everything but chat turns: at most server.threads "
                                      "minus this many turns run at once (at least one); more get 503 server_busy.",
                                   int, min=0, max=512),
    }}


RETRY_AFTER_SECONDS = 5  # what a refused turn's Retry-After says: a short reply's time on a small model


class TurnGate:
    """The chat turns in progress, so that no user and no session takes more than its share of
    the worker threads. Each turn holds a waitress thread until its reply is done (a long streamed
    reply from a small local model: ~20 s), whether streamed or not: 16 streams from one user held
    all 16 threads and every other request waited up to 19 s (bench/streams). So a turn is let in only
    if its session has no turn in progress (one at a time: two would both see the session without
    a reply and both add the first reply's disclaimer), its user has fewer than
    ``chat.max_turns_per_user``, and fewer than ``server.threads - chat.reserve_threads`` run in
    all; else it is refused at once, before anything is stored (waiting would hold a thread too).

    The tables hold only turns in progress, so they stay as small as the cap."""

    def __init__(self, per_user: int, total: int):
        self.per_user, self.total = per_user, total
        self._lock = threading.Lock()
        self._users = Counter()  # user id -> turns in progress
        self._sessions = set()  # session ids with a turn in progress
        self.open = 0

    def enter(self, user_id: str, session_id: str) -> "TurnSlot":
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        with self._lock:
            if session_id in self._sessions:
                raise ApiError(409, "turn_in_progress", "This session is still answering your previous message; "
                                                        "send the next one when that reply has ended.", retry)
            if self._users[user_id] >= self.per_user:
                raise ApiError(429, "too_many_turns", f"You already have {self._users[user_id]} replies in progress, "
                                                      "the most this server allows at once "
                                                      "(chat.max_turns_per_user); wait for one to end.", retry)
            if self.open >= self.total:
                raise ApiError(503, "server_busy", f"The server is answering {self.open} chats, as many as it "
                                                   "takes at once; try again in a few seconds.", retry)
            self._users[user_id] += 1
            self._sessions.add(session_id)
            self.open += 1
        return TurnSlot(self, user_id, session_id)

    def _leave(self, user_id: str, session_id: str):
        with self._lock:
            self.open -= 1
            self._sessions.discard(session_id)
            self._users[user_id] -= 1
            if not self._users[user_id]:
                del self._users[user_id]


class TurnSlot:
    """One turn's place in the `TurnGate`; `release` may be called any number of times."""

    def __init__(self, gate: TurnGate, user_id: str, session_id: str):
        self._gate, self._user_id, self._session_id = gate, user_id, session_id
        self._released = False
        self._lock = threading.Lock()

    def release(self):
        with self._lock:
            if self._released:
                return
            self._released = True
        self._gate._leave(self._user_id, self._session_id)


class ChatService:
    """One chat turn: store the user's message, build the context, run the provider chain,
    tag and store the reply. Shared by the plain and the streaming route."""

    def __init__(self, wm):
        self.wm = wm
        self.providers = wm.build_providers()
        tagger_class = wm.tagger_classes[wm.config["emotion"]["tagger"]]
        self.tagger = tagger_class(wm.config["emotion"], wm)
        self.labels = wm.config["emotion"]["labels"]
        # Replies carry what the mascot shows (plugins/_reply_emotion.py); empty: the user labels.
        self.reply_labels = wm.config["emotion"]["reply_labels"] or list(self.labels)
        self.reply_emotion = ReplyEmotion(wm, wm.config["emotion"].get("lexicon") or "prompts/emotion_lexicon.yaml")
        self.failures = Counter()  # provider name -> failures since start, for the service view
        self._push_lock = threading.Lock()
        chat = wm.config["chat"]
        self.gate = TurnGate(chat["max_turns_per_user"],
                             max(1, wm.config["server"]["threads"] - chat["reserve_threads"]))

    def provider(self, name: str):
        """The provider instance configured as ``providers.NAME`` (None if there is none)."""
        return self.providers.get(name)

    def failure_counts(self) -> dict[str, int]:
        """Provider name -> how often it failed since the server started (for /admin/stats)."""
        return dict(self.failures)

    def agent(self, name: str) -> dict:
        agents = self.wm.config["agents"]
        if name not in agents:
            raise ApiError(404, "unknown_agent", f"No agent named {name!r}; agents: {', '.join(agents)}.")
        return agents[name]

    def tag(self, text: str, label: str | None = None) -> str:
        """A configured label for ``text``: ``label`` if it is one (what a tagger's reader found
        in the reply), else the tagger's; neutral if the tagger fails."""
        if label not in self.labels:
            try:
                label = self.tagger.tag(text, self.labels)
            except Exception:
                log.exception("emotion tagger failed")
                label = None
        return label if label in self.labels else ("neutral" if "neutral" in self.labels else self.labels[0])

    def reply_tag(self, text: str, turn: "Reply | None" = None, label: str | None = None) -> str:
        """One of ``emotion.reply_labels`` for a reply: ``label`` if the model named one (unless
        safety spoke this turn), else decided from the turn and the reply's words."""
        urgent = bool(turn and turn.urgent)
        try:
            if label not in self.reply_labels and not urgent:
                label = self.tagger.reply_label(text, self.reply_labels)  # a model's call, if the tagger has one
            if label in self.reply_labels and not urgent:
                return label
            decided = self.reply_emotion.decide(
                text, turn.user_emotion if turn else None, urgent,
                bool(turn and (turn.session.get("flags") or {}).get("crisis")),
                words_label=lambda words: self.tag(words))
        except Exception:
            log.exception("labelling a reply failed")
            decided = "neutral"
        return shown(decided, self.reply_labels)

    def own_session(self, user: dict, session_id: str) -> dict:
        session = self.wm.storage.get_session(session_id)
        # Another user's session answers exactly like a missing one: its existence is not revealed.
        if session is None or session["user_id"] != user["id"]:
            raise ApiError(404, "session_not_found", f"No session {session_id!r}.")
        return session

    def push(self, session_id: str, message: dict) -> dict:
        """Add a message the agent sends on its own (a reminder) to a session: role assistant,
        tagged with an emotion. It counts as unread until the user next opens the session.

        Unread is kept as the session's ``pushed_at`` (times of pushed messages, the newest
        MAX_UNREAD) against its ``read_at``; only this method writes the first and only reading
        the session writes the second, so neither can overwrite the other's update."""
        message = {"role": "assistant", "emotion": self.reply_tag(message.get("content") or ""),
                   "created_at": now_iso(), **message}
        with self._push_lock:
            stored = self.wm.storage.append_message(session_id, message)
            session = self.wm.storage.get_session(session_id) or {}
            pushed = (session.get("pushed_at") or [])[-(MAX_UNREAD - 1):] + [stored["created_at"]]
            self.wm.storage.update_session(session_id, {"pushed_at": pushed})
        return stored

    def begin(self, user: dict, agent_name: str, body: dict):
        """Validate, find or create the session, store the user's message; return the turn,
        which holds a place in the gate until `Reply.release`."""
        agent = self.agent(agent_name)
        text = field(body, "text", max_len=self.wm.config["chat"]["max_message_chars"])
        session_id = field(body, "session_id", required=False, max_len=64)
        if session_id:
            session = self.own_session(user, session_id)
            if session["agent"] != agent_name:
                raise ApiError(400, "wrong_agent", f"Session {session_id!r} belongs to agent {session['agent']!r}.")
        new_session_id = None if session_id else new_id()
        slot = self.gate.enter(user["id"], session_id or new_session_id)
        try:
            if not session_id:
                session = self.wm.storage.create_session({
                    "id": new_session_id, "user_id": user["id"], "agent": agent_name,
                    "title": title_from(text), "created_at": now_iso()})
            turn = self._begin(user, agent_name, agent, session, text)
        except BaseException:
            slot.release()
            raise
        turn.release = slot.release
        return turn

    def _begin(self, user: dict, agent_name: str, agent: dict, session: dict, text: str):
        system = self.system_prompt(user, agent_name, agent)
        # Not flushed to disk yet: the reply's append flushes both (one fsync per turn, not two),
        # and `Reply.sync` does it where a turn ends without a reply. Until then nothing has told
        # the user the message is saved.
        storage = self.wm.storage
        history, _ = storage.list_messages(session["id"], limit=agent["history"])
        message = {"id": new_id(), "role": "user", "content": text}
        messages = [{"role": "system", "content": system}] + [
            {"role": m["role"], "content": m["content"]} for m in history if m["role"] in ("user", "assistant")] + [
            {"role": "user", "content": text}]
        turn = Reply(self, Turn(user, agent_name, session, text, user_message_id=message["id"], message_id=new_id()),
                     agent, messages)

        def store():
            # Stored once, after the before_reply hooks: its label then knows whether safety
            # answered it with a crisis reply or a check-in ("everyone would be better off if i just
            # disappeared for good" was stored as happy, for its "better" and "good").
            turn.user_emotion = user_label(self.tag(text), turn.raised(), self.labels)
            storage.append_message(session["id"], {**message, "emotion": turn.user_emotion,
                                                   "created_at": now_iso()}, durable=False)
        try:
            turn.ask_plugins()
        except BaseException:
            store()
            turn.sync()
            raise
        store()
        return turn

    def system_prompt(self, user, agent_name, agent) -> str:
        try:
            return self.wm.prompts.render(agent["prompt"], self.wm.prompt_values(user, agent_name))
        except ConfigError as e:
            log.error("%s", e)
            raise ApiError(500, "prompt_error", f"The {agent_name} agent's prompt file has a problem; the server log says what.")

    def close(self):
        try:
            self.tagger.close()
        except Exception:
            log.exception("closing the emotion tagger")
        for provider in self.providers.values():
            try:
                provider.close()
            except Exception:
                log.exception("closing provider %s", provider.name)


def title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 30 else line[:30] + "…"


class Reply:
    """One reply in the making, after the user's message is stored. ``turn`` is what plugins
    and providers are given of it (`wellmate.Turn`)."""

    def __init__(self, chat: ChatService, turn: Turn, agent: dict, messages: list[dict]):
        self.chat, self.turn, self.agent = chat, turn, agent
        self.session, self.agent_name, self.message_id = turn.session, turn.agent, turn.message_id
        self.messages = messages
        self.failures = []
        self.stored = False
        self.canned, self.canned_by = None, None  # a plugin's whole reply: no provider is asked
        self.fallback_by = None  # a plugin whose prefix is the reply when no provider answers
        self.prefix, self.suffix = "", ""  # plugins' text around the reply
        self.readers = []  # plugins' reader factories: they see a provider's text before the tagger's reader
        self.user_emotion = None  # the user's message's label
        self.session_flags = {}  # the session's flags (safety's counts) before this turn
        self.release = lambda: None  # gives up the turn's place in the gate (set by ChatService.begin)

    def ask_plugins(self):
        """Let the tagger and the before_reply hooks shape this turn (see wellmate.Hookspecs)."""
        user, text, wm = self.turn.user, self.turn.text, self.chat.wm
        self.session_flags = dict(self.session.get("flags") or {})
        results = [r for r in call_each(wm.pm.hook.before_reply, user=user, agent=self.agent_name,
                                        session=self.session, text=text, turn=self.turn, wm=wm) if isinstance(r, dict)]
        system = [self.chat.tagger.instructions(self.chat.reply_labels)] + [r.get("system") for r in results]
        system = "\n\n".join(part for part in system if part)
        if system:
            self.messages[0] = {"role": "system", "content": self.messages[0]["content"] + "\n\n" + system}
        canned = next((r for r in results if r.get("reply")), None)
        if canned:
            self.canned, self.canned_by = str(canned["reply"]), str(canned.get("provider") or "wellmate")
        self.prefix = "".join(str(r["prefix"]) for r in results if r.get("prefix"))
        fallback = next((r for r in results if r.get("fallback")), None)
        if fallback and self.prefix.strip():
            self.fallback_by = str(fallback["fallback"])
        self.suffix = "".join(str(r["suffix"]) for r in results if r.get("suffix"))
        self.readers = [r["reader"] for r in results if callable(r.get("reader"))]

    def raised(self) -> set:
        """What safety counted on the session during this turn (crisis, check_in, red_flag,
        unsafe_reply, ...): a crisis reply or an urgent note, and the mascot shows concern. Read
        when asked, not once after before_reply: safety's reader flags the session late, when it
        replaces a model's reply (the reply was labelled caring, not concerned)."""
        now = self.session.get("flags") or {}
        return {kind for kind in now if now.get(kind, 0) > self.session_flags.get(kind, 0)}

    @property
    def urgent(self) -> bool:
        return bool(self.raised())

    def reader(self):
        """A fresh reader of one provider's output: the plugins' readers (the safety plugin's
        cuts a marker off, or holds a reply back until it is checked), then the tagger's (which
        may strip a label the model wrote), or one that passes text through."""
        tagger = self.chat.tagger.reader(self.chat.reply_labels) or PassThrough()
        return Readers([make() for make in self.readers] + [tagger]) if self.readers else tagger

    def chain(self):
        for name in self.agent["providers"]:
            yield self.chat.providers[name]

    def failed(self, provider, error):
        self.chat.failures[provider.name] += 1
        self.failures.append(f"{provider.name}: {error}")
        log.warning("provider %s failed: %s", provider.name, error)

    def unavailable(self) -> ApiError:
        reasons = "; ".join(self.failures) or "the agent has no providers"
        return ApiError(503, "providers_unavailable", f"No provider could answer ({reasons}). Your message was saved.")

    def sync(self):
        """Make the user's message durable (a no-op once the reply's append has)."""
        self.chat.wm.storage.sync_messages(self.session["id"])

    def reply(self) -> dict:
        try:
            if self.canned is not None:
                return self.finish(self.canned, self.canned_by)
            for provider in self.chain():
                try:
                    content = call_with_turn(provider.reply, self.messages, self.turn)
                except ProviderError as e:
                    self.failed(provider, e)
                    continue
                reader = self.reader()
                return self.finish(reader.feed(content) + reader.end(), provider.name, label=reader.label)
            if self.fallback_by:
                return self.fall_back()
            raise self.unavailable()  # "Your message was saved": it is, by the sync below
        finally:
            try:
                self.sync()
            finally:
                self.release()

    def fall_back(self) -> dict:
        """No provider answered a turn whose prefix can stand alone (safety's check-in note): the
        prefix is the reply, stored and labelled, rather than a 503 that loses it. The prefix stays
        as it was (a stream has shown it), the suffix (a disclaimer) goes."""
        log.warning("no provider answered (%s): the reply is %s's note alone", "; ".join(self.failures),
                    self.fallback_by)
        self.suffix = ""
        return self.finish("", self.fallback_by)

    def finish(self, body: str, provider_name: str, incomplete=False, label=None) -> dict:
        """Store the reply: ``body`` (what the provider said, as shown) between the plugins'
        prefix and suffix and what after_reply hooks add. Its emotion is the body's own."""
        body = whole_text(body)
        content = self.prefix + body
        if not incomplete:
            content += self.suffix
            wm = self.chat.wm
            for extra in call_each(wm.pm.hook.after_reply, user=self.turn.user, agent=self.agent_name,
                                   session=self.session, text=self.turn.text, reply=content, turn=self.turn, wm=wm):
                content += str(extra)
        message = {"id": self.message_id, "role": "assistant", "content": content,
                   "emotion": self.chat.reply_tag(body, self, label), "provider": provider_name,
                   "created_at": now_iso()}
        if incomplete:
            message["incomplete"] = True
        self.chat.wm.storage.append_message(self.session["id"], message)
        self.stored = True
        return {"session_id": self.session["id"], "message_id": self.message_id, "content": content,
                "emotion": message["emotion"], "timestamp": message["created_at"],
                "agent": self.agent_name, "provider": provider_name, **({"incomplete": True} if incomplete else {})}


def call_each(hook, **kwargs) -> list:
    """Call every implementation of a reply-path hook, each on its own, in pluggy's order: a bug
    in one plugin is logged and costs only its own contribution, never the reply or another
    plugin's (a crisis reply must not depend on every plugin being right)."""
    impls = hook.get_hookimpls()
    if any(impl.hookwrapper or getattr(impl, "wrapper", False) for impl in impls):
        try:  # wrappers need pluggy's own calling: all or nothing
            return hook(**kwargs)
        except Exception:
            log.exception("a %s hook failed", hook.name)
            return []
    results = []
    for impl in reversed(impls):  # pluggy calls the last registered first
        try:
            result = impl.function(*[kwargs[name] for name in impl.argnames])
        except Exception:
            log.exception("the %s hook of plugin %s failed", hook.name, impl.plugin_name)
            continue
        if result is not None:
            results.append(result)
    return results


class PassThrough:
    """The reader of a tagger that reads nothing from the reply."""

    label = None

    def feed(self, delta: str) -> str:
        return delta

    def end(self) -> str:
        return ""


class Readers:
    """Readers in a row: what one shows, the next one reads. The label is the last one's (the
    tagger's)."""

    def __init__(self, readers: list):
        self.readers = readers

    @property
    def label(self):
        return self.readers[-1].label

    def feed(self, delta: str) -> str:
        for reader in self.readers:
            delta = reader.feed(delta) if delta else ""
        return delta

    def end(self) -> str:
        text = ""
        for reader in self.readers:
            text = (reader.feed(text) if text else "") + reader.end()
        return text


class Relay:
    """Reads a provider's stream in its own thread so the response can send ': ping' while the
    upstream is silent. The reader stops (closing the upstream) once `cancel` is set."""

    def __init__(self, provider, messages, turn: Turn | None = None):
        self.queue = queue.Queue()
        self.cancelled = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(provider, messages, turn), daemon=True,
                                       name=f"relay-{provider.name}")
        self.thread.start()

    def _run(self, provider, messages, turn):
        stream = None
        try:
            stream = call_with_turn(provider.stream, messages, turn)
            for delta in stream:
                if self.cancelled.is_set():
                    break
                if delta:
                    self.queue.put(("delta", delta))
                    # Yield the interpreter now: else the worker that sends this delta waits out Python's 5 ms
                    # switch interval while this thread parses the rest of the upstream stream.
                    time.sleep(0)
            else:
                self.queue.put(("end", None))
        except Exception as e:  # ProviderError, or a plugin's bug: both end this stream
            self.queue.put(("error", e))
        finally:
            if stream is not None and hasattr(stream, "close"):
                stream.close()  # runs the provider's finally: the upstream request is closed

    def get(self, timeout):
        return self.queue.get(timeout=timeout)

    def cancel(self):
        self.cancelled.set()


def sse(data: dict, event: str | None = None) -> str:
    return (f"event: {event}\n" if event else "") + f"data: {json_dumps(data)}\n\n"


def stream_turn(turn: Reply, ping_seconds: float):
    """The SSE body of a streamed chat turn."""
    # Bottle sends the headers with the first chunk: this reaches the client before any
    # provider is called.
    yield ": connected\n\n"
    chain = iter(() if turn.canned is not None else turn.chain())
    provider = next(chain, None)
    # The first provider is asked now, and the user's message is flushed to disk while it
    # thinks, so a slow disk (a Pi's SD card) adds nothing to the time to the first delta.
    relay = Relay(provider, turn.messages, turn.turn) if provider else None
    parts = []
    try:
        turn.sync()  # before `start`, which tells the client its message is saved
        yield sse({"session_id": turn.session["id"], "message_id": turn.message_id}, "start")
        if turn.prefix:  # an urgent note goes out before any of the model's words
            yield sse({"delta": turn.prefix})
        if turn.canned is not None:
            yield sse({"delta": turn.canned})
            yield from closing(turn.finish(turn.canned, turn.canned_by), turn.prefix + turn.canned)
            return
        while provider is not None:
            relay = relay or Relay(provider, turn.messages, turn.turn)
            reader = turn.reader()
            while True:
                try:
                    kind, value = relay.get(timeout=ping_seconds)
                except queue.Empty:
                    yield ": ping\n\n"
                    continue
                if kind == "delta":
                    shown = reader.feed(value)
                    if shown:
                        parts.append(shown)
                        yield sse({"delta": shown})
                elif kind == "end":
                    rest = reader.end()
                    if rest:
                        parts.append(rest)
                        yield sse({"delta": rest})
                    result = turn.finish("".join(parts), provider.name, label=reader.label)
                    yield from closing(result, turn.prefix + "".join(parts))
                    return
                elif not parts and isinstance(value, ProviderError) and value.retryable:
                    turn.failed(provider, value)
                    break  # nothing sent yet: the next provider in the chain answers
                else:
                    turn.failed(provider, value)
                    if not parts and turn.fallback_by:  # the prefix, already shown, is the whole reply
                        yield from closing(turn.fall_back(), turn.prefix)
                        return
                    if parts:  # keep what the user saw, marked incomplete
                        turn.finish("".join(parts), provider.name, incomplete=True)
                    code = "provider_error" if parts else "providers_unavailable"
                    yield sse({"code": code, "message": f"The reply stopped: {value}"}, "error")
                    return
            relay.cancel()
            provider, relay = next(chain, None), None
        if turn.fallback_by:  # the prefix, already shown, is the whole reply
            yield from closing(turn.fall_back(), turn.prefix)
            return
    except StorageUnavailable as e:
        # The 200 is out: the 503 storage_unavailable of other routes becomes the stream's error
        # event (raised on, it cut the stream without its last chunk and logged a traceback).
        log.error("storage unavailable in a chat stream: %s", e)
        parts = []  # nor the partial reply: it cannot be stored either
        yield sse({"code": "storage_unavailable", "message": "The server cannot write its data now (full disk or "
                   "read-only storage): this reply was not saved. Try again later."}, "error")
        return
    finally:
        # Also reached by GeneratorExit when the client went away mid-stream.
        if relay is not None:
            relay.cancel()
        if parts and not turn.stored:
            turn.finish("".join(parts), provider.name, incomplete=True)
    error = turn.unavailable()
    yield sse({"code": error.code, "message": error.message}, "error")


class Holding:
    """A response body that gives up its turn's place in the gate when it ends, however it ends:
    waitress calls ``close`` after the last chunk, after a write that failed because the client
    went away, and on errors; also when the body never started."""

    def __init__(self, body, release):
        self.body, self.release = body, release

    def __iter__(self):
        return self

    def __next__(self):
        return next(self.body)

    def close(self):
        try:
            self.body.close()  # GeneratorExit in stream_turn: the upstream is closed, a partial reply kept
        finally:
            self.release()


def closing(result: dict, sent: str):
    """The end of a stream: what plugins added after the text already ``sent`` goes out as a
    last delta, so the deltas add up to ``done.content``, which is what was stored."""
    tail = result["content"][len(sent):] if result["content"].startswith(sent) else ""
    if tail:
        yield sse({"delta": tail})
    yield sse(result, "done")


MAX_UNREAD = 99  # a badge shows 99 at most


def unread(session: dict) -> int:
    """Messages pushed to the session (reminders) since the user last opened it."""
    read_at = session.get("read_at") or ""
    return sum(1 for at in session.get("pushed_at") or () if at > read_at)


def session_view(session: dict) -> dict:
    view = {key: session.get(key) for key in
            ("id", "agent", "title", "created_at", "updated_at", "message_count")}
    view["unread"] = unread(session)
    return view


def message_view(message: dict) -> dict:
    view = {key: message[key] for key in ("id", "role", "content", "created_at")}
    for key in ("emotion", "provider", "incomplete", "reminder_id"):
        if message.get(key) is not None:
            view[key] = message[key]
    return view


@hookimpl
def register_services(register):
    register("chat", ChatService)


@hookimpl
def routes(app, wm):
    chat = wm.service("chat")

    @app.get("/api/v1/health/agents")
    def agents():
        return {"items": [{"name": name, "title": conf["title"] or name, "description": conf["description"]}
                          for name, conf in wm.config["agents"].items()]}

    @app.post("/api/v1/health/<agent_name>/chat")
    def chat_reply(agent_name):
        user = wm.require_user()
        return chat.begin(user, agent_name, wm.json_body()).reply()

    @app.post("/api/v1/health/<agent_name>/chat/stream")
    def chat_stream(agent_name):
        user = wm.require_user()
        turn = chat.begin(user, agent_name, wm.json_body())
        bottle.response.content_type = "text/event-stream; charset=utf-8"
        bottle.response.set_header("Cache-Control", "no-cache")
        bottle.response.set_header("X-Accel-Buffering", "no")  # nginx: do not buffer this response
        return Holding(stream_turn(turn, wm.config["chat"]["ping_seconds"]), turn.release)

    @app.get("/api/v1/health/sessions")
    def list_sessions():
        user = wm.require_user()
        agent = bottle.request.query.get("agent") or None
        if agent:
            chat.agent(agent)
        return paged(wm.storage.list_sessions, session_view, user_id=user["id"], agent=agent)

    @app.post("/api/v1/health/sessions")
    def create_session():
        user = wm.require_user()
        body = wm.json_body()
        agent = field(body, "agent")
        chat.agent(agent)
        session = wm.storage.create_session({
            "id": new_id(), "user_id": user["id"], "agent": agent,
            "title": field(body, "title", required=False, default="", max_len=100), "created_at": now_iso()})
        bottle.response.status = 201
        return session_view(wm.storage.get_session(session["id"]))

    @app.get("/api/v1/health/sessions/<session_id>")
    def read_session(session_id):
        session = chat.own_session(wm.require_user(), session_id)
        if unread(session):  # opening the session reads it; marked before reading, so nothing is skipped
            session = wm.storage.update_session(session_id, {"read_at": now_iso()}) or session
        messages = paged(wm.storage.list_messages, message_view, 50, 200, session_id=session_id)
        return {**session_view(session), "messages": messages}

    @app.delete("/api/v1/health/sessions/<session_id>")
    def delete_session(session_id):
        chat.own_session(wm.require_user(), session_id)
        wm.storage.delete_session(session_id)
        bottle.response.status = 204
        return ""


@hookimpl
def shutdown(wm):
    chat = wm.service("chat")
    if chat:
        chat.close()
