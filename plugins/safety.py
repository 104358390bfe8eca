"""The ``safety`` plugin: crisis replies, red-flag notes and the medical disclaimer.

It sits on the reply path through the `before_reply` hook, so it works the same with every
provider, including none:

- A message with self-harm or suicide intent (Chinese or English, direct or indirect: "我不想活了",
  "everyone would be better off without me") gets a caring reply with the hotline and emergency
  numbers from config.yaml *instead of* any model's reply. No provider is called, so it answers
  even when every provider is down, and a small model cannot get this moment wrong. The session
  is flagged (``flags.crisis``), admins see the count at GET /api/v1/admin/flags, and later turns
  of that session tell the model to keep checking on the user's safety.
- An emergency symptom (chest pain with breathlessness, stroke signs, heavy bleeding, collapse,
  a sudden worst headache, a swelling throat) puts "call 120 now" at the very top of the reply:
  in a stream it is the first delta, ahead of any of the model's words.
- The one-line medical disclaimer is added after the first reply of a session (or every reply,
  or never: ``safety.disclaimer``).

The phrases and wordings live in prompts/safety.yaml, which users edit (re-read when it changes);
the numbers live in config.yaml. tests/data/crisis_cases.tsv is the test set: every positive
must be found, and bench/emotion prints the false-positive rate.
"""

from __future__ import annotations

import logging
import re

from wellmate import (CLAUSE_END, Setting, Terms, WatchedYaml, data_file_candidates, hookimpl,
                      normalize, now_iso, page_args, term_alternatives)

log = logging.getLogger("wellmate.safety")

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


@hookimpl
def config_schema():
    return {"safety": {
        "phrases": Setting("prompts/safety.yaml", "Crisis and red-flag phrases and wordings, relative to "
                                                  "config.yaml; re-read when it changes."),
        "hotlines": Setting(["12356", "400-161-9995"], "Mental health hotlines given in a crisis reply.", list),
        "emergency": Setting(["120", "110"], "Emergency numbers: the first is the one red-flag notes say to call.", list),
        "red_flag_agents": Setting([], "Agents whose replies get red-flag notes; empty: every agent.", list),
        "disclaimer": Setting("first", "When the medical disclaimer is added: first (reply of a session), "
                                       "always, or never.", choices=["first", "always", "never"]),
    }}


def language(text: str) -> str:
    """zh for text with Chinese characters, en for Latin-only text; zh when it cannot tell
    (emoji only), since most users write Chinese."""
    if _CJK.search(text):
        return "zh"
    return "en" if _LATIN.search(text) else "zh"


def fill(template: str, values: dict) -> str:
    """``{name}`` placeholders filled by plain replacement: a stray brace in an edited file can
    never break a crisis reply the way str.format would."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


def _patterns(items, where: str) -> list[re.Pattern]:
    compiled = []
    for item in items or []:
        try:
            compiled.append(re.compile(str(item)))
        except re.error as e:  # a ValueError for WatchedYaml: the last good file stays in use
            raise ValueError(f"{where}: bad pattern {item!r}: {e}")
    return compiled


def _both(spec) -> list[str]:
    """The words of a {zh: [...], en: [...]} mapping, or of a plain list."""
    if isinstance(spec, dict):
        return [str(w) for words in spec.values() for w in words or []]
    return [str(w) for w in spec or []]


class Rule:
    """One red flag: found when any `any` phrase or pattern is, or one phrase of every `all` group."""

    def __init__(self, name: str, spec: dict):
        self.name = name
        self.any = Terms(_both(spec.get("any")))
        self.patterns = _patterns(spec.get("patterns"), f"red_flags.{name}.patterns")
        self.all = [Terms(_both(group)) for group in spec.get("all") or []]
        note = spec.get("note") or {}
        self.note = {lang: str(note.get(lang) or "") for lang in ("zh", "en")}


class Phrases:
    """prompts/safety.yaml, compiled."""

    def __init__(self, data: dict):
        crisis = data.get("crisis") or {}
        self.crisis_not = {normalize(w) for w in _both(crisis.get("not"))}
        self.crisis_terms = Terms(_both(crisis.get("terms")) + list(self.crisis_not))
        self.crisis_patterns = _patterns(crisis.get("patterns"), "crisis.patterns")
        replies = data.get("crisis_replies") or {}
        self.crisis_replies = {lang: [str(r) for r in replies.get(lang) or [] if str(r).strip()] for lang in ("zh", "en")}
        self.crisis_system = str(data.get("crisis_system") or "")
        flags = data.get("red_flags") or {}
        self.rules = [Rule(str(name), spec) for name, spec in flags.items()
                      if name != "negations" and isinstance(spec, dict)]
        self.negation = self._negation([str(w) for w in flags.get("negations") or []])
        self.red_flag_system = str(data.get("red_flag_system") or "")
        self.disclaimer = {lang: str((data.get("disclaimer") or {}).get(lang) or "") for lang in ("zh", "en")}

    @staticmethod
    def _negation(words: list[str]) -> re.Pattern | None:
        """Words that, at the end of the clause before a symptom, say the user does not have it."""
        words = [normalize(w) for w in words if normalize(w)]
        other, latin = term_alternatives(words, False), term_alternatives(words, True)
        parts = ([other] if other else []) + ([rf"(?<![a-z])(?:{latin})" if latin else ""] if latin else [])
        if not parts:
            return None
        # "no chest pain", "没有任何胸痛", "don't have any chest pain"
        return re.compile("(?:" + "|".join(parts) + r")\s*(?:any|任何|什么|明显)?\s*$")

    # -- finding -------------------------------------------------------------------------------
    def crisis(self, text: str) -> bool:
        """Whether ``text`` (normalized) speaks of suicide or self-harm."""
        if any(word not in self.crisis_not for _, word in self.crisis_terms.find(text)):
            return True
        return any(p.search(text) for p in self.crisis_patterns)

    def red_flags(self, text: str) -> list[Rule]:
        """The red-flag rules ``text`` (normalized) matches, in file order."""
        found = []
        for rule in self.rules:
            if self._has(rule.any, text) or any(p.search(text) for p in rule.patterns) or (
                    rule.all and all(self._has(group, text) for group in rule.all)):
                found.append(rule)
        return found

    def _has(self, terms: Terms, text: str) -> bool:
        for start, _ in terms.find(text):
            before = text[:start]
            clause = before[max((m.end() for m in CLAUSE_END.finditer(before)), default=0):]
            if self.negation is None or not self.negation.search(clause[-16:]):
                return True
        return False


# Used if prompts/safety.yaml has no crisis reply at all: a crisis never goes unanswered.
FALLBACK_CRISIS = {
    "zh": "我很担心你。请现在就联系心理援助热线 {hotlines}；如果有立即的危险，请拨打 {emergency}。我在这里陪你，你现在安全吗？",
    "en": "I'm worried about you. Please call a hotline now: {hotlines}; if you're in immediate danger, call "
          "{emergency}. I'm here with you. Are you safe right now?",
}


class Safety:
    """What the plugin does for one Wellmate: reads its settings and the phrases file."""

    def __init__(self, wm):
        self.wm = wm
        self.config = wm.config["safety"]
        self.phrases = WatchedYaml(data_file_candidates(wm, self.config["phrases"]), Phrases,
                                   without="no crisis or red-flag phrases are checked")

    def numbers(self, lang: str) -> dict:
        sep = "、" if lang == "zh" else ", "
        hotlines = [str(n) for n in self.config["hotlines"]]
        emergency = [str(n) for n in self.config["emergency"]] or ["120"]
        return {"hotlines": sep.join(hotlines), "emergency": sep.join(emergency), "first_emergency": emergency[0]}

    def check(self, text: str) -> tuple[bool, list[str]]:
        """(crisis found, red-flag rule names) for a message: what bench/emotion measures."""
        phrases, text = self.phrases.get(), normalize(text)
        return phrases.crisis(text), [rule.name for rule in phrases.red_flags(text)]

    def before_reply(self, user, agent, session, text) -> dict | None:
        phrases, lang = self.phrases.get(), language(text)
        normal = normalize(text)
        numbers = self.numbers(lang)
        result, system = {}, []
        flags = session.get("flags") or {}
        crisis = phrases.crisis(normal)
        if crisis:
            replies = phrases.crisis_replies[lang] or phrases.crisis_replies["zh" if lang == "en" else "en"] \
                or [FALLBACK_CRISIS[lang]]
            result["reply"] = fill(replies[min(flags.get("crisis", 0), len(replies) - 1)], numbers)
            result["provider"] = "safety"
        elif flags.get("crisis") and phrases.crisis_system:
            system.append(fill(phrases.crisis_system, numbers))
        agents = self.config["red_flag_agents"]
        rules = phrases.red_flags(normal) if not agents or agent in agents else []
        if rules:
            # One note: each says to call the emergency number, and a wall of warnings buries that.
            note = next((r.note[lang] or r.note["zh"] for r in rules if r.note[lang] or r.note["zh"]), "")
            if note:
                result["prefix"] = fill(note, {"emergency": numbers["first_emergency"]}) + "\n\n"
            if phrases.red_flag_system:
                system.append(fill(phrases.red_flag_system, {"emergency": numbers["first_emergency"]}))
        if crisis or rules:
            self.flag(session, (["crisis"] if crisis else []) + [f"red_flag:{r.name}" for r in rules])
        when = self.config["disclaimer"]
        if not crisis and phrases.disclaimer[lang] and (
                when == "always" or (when == "first" and self.first_reply(session))):
            result["suffix"] = "\n\n" + phrases.disclaimer[lang]
        if system:
            result["system"] = "\n\n".join(system)
        return result or None

    def first_reply(self, session) -> bool:
        """Whether no reply has been given in this session yet (``message_count`` is what the
        session held before this turn's message)."""
        count = session.get("message_count") or 0
        if count == 0:
            return True
        if count > 40:  # a long session has had a reply
            return False
        messages, _ = self.wm.storage.list_messages(session["id"], limit=count + 1)
        return not any(m.get("role") == "assistant" for m in messages)

    def flag(self, session: dict, kinds: list[str]):
        """Count what was found on the session, for admins. The message itself is not logged."""
        flags = dict(session.get("flags") or {})
        for kind in kinds:
            key = "red_flag" if kind.startswith("red_flag") else kind
            flags[key] = flags.get(key, 0) + 1
        changes = {"flags": flags, "flagged_at": now_iso()}
        self.wm.storage.update_session(session["id"], changes)
        session.update(changes)
        log.warning("session %s of user %s flagged: %s", session["id"], session.get("user_id"), ", ".join(kinds))

    def flagged(self, limit: int = 50) -> dict:
        """Flagged sessions across all users: counts, and the ``limit`` most recently flagged.
        Walks every user's sessions (storage has no index of flags), fine for a household."""
        items, users, by_kind = [], set(), {}
        cursor = None
        while True:
            page, cursor = self.wm.storage.list_users(limit=100, before=cursor)
            for user in page:
                session_cursor = None
                while True:
                    sessions, session_cursor = self.wm.storage.list_sessions(user["id"], limit=100, before=session_cursor)
                    for session in sessions:
                        flags = session.get("flags") or {}
                        if not flags:
                            continue
                        users.add(user["id"])
                        for kind, count in flags.items():
                            by_kind[kind] = by_kind.get(kind, 0) + 1
                        items.append({"session_id": session["id"], "user_id": user["id"],
                                      "username": user.get("username"), "agent": session.get("agent"),
                                      "flags": flags, "flagged_at": session.get("flagged_at"),
                                      "updated_at": session.get("updated_at")})
                    if not session_cursor:
                        break
            if not cursor:
                break
        items.sort(key=lambda item: item["flagged_at"] or "", reverse=True)
        return {"sessions": len(items), "users": len(users), "by_kind": by_kind, "items": items[:limit]}


@hookimpl
def before_reply(user, agent, session, text, wm):
    return wm.safety.before_reply(user, agent, session, text)


@hookimpl
def routes(app, wm):
    wm.safety = Safety(wm)

    @app.get("/api/v1/admin/flags")
    def admin_flags():
        wm.require_admin()
        limit, _ = page_args(default_limit=50, max_limit=500)
        return wm.safety.flagged(limit)
