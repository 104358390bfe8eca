"""The ``llm`` emotion tagger: the model labels the feeling, with the lexicon as a fallback.

    emotion:
      tagger: llm
      llm_mode: inline        # or: call
      llm_provider: local     # for call mode: a provider under providers:
      fallback: model         # or lexicon

Two ways, chosen by ``emotion.llm_mode``:

- ``inline`` (no extra request): every agent's system prompt asks the model to begin its reply
  with its label in square brackets, ``[calm]``. The tag is cut off before the client sees
  anything, also when it arrives split across stream deltas (``[ca`` + ``lm]``). The user's own
  message is labelled by the fallback tagger, since it is stored before the model answers.
- ``call``: one short extra request per message to ``emotion.llm_provider`` asks for the label of
  the user's message and of the reply. Slower (two more round trips per turn), but it labels the
  user's message too, which is what the mood timeline counts.

Whenever the model's label is missing, not one of ``emotion.labels``, or its provider cannot be
reached, the ``fallback`` tagger (the trained model, or the lexicon) decides: a label is always given.
In inline mode the model picks its reply's label from ``emotion.reply_labels`` (what the mascot shows).
"""

from __future__ import annotations

import logging
import re
import threading

from wellmate import ConfigError, ProviderError, Setting, Tagger, hookimpl

log = logging.getLogger("wellmate.tagger_llm")

INSTRUCTIONS = (
    "Begin every reply with a tag naming the feeling of your reply, in square brackets, chosen from: "
    "{labels}. For example: [calm] Then write the reply itself. The tag is removed before the user sees "
    "the reply, so never mention it.")

CLASSIFY = (
    "You label the feeling of a chat message for a health companion app. Answer with exactly one "
    "word from this list and nothing else: {labels}.")

# A leading tag: "[calm]", "【平静】", "[emotion: sad]", with spaces anywhere. Letters only, so a
# reply that starts with "[1]" keeps it.
TAG = re.compile(r"\s*[\[【]\s*(?:(?:emotion|feeling|label|mood|情绪)\s*[:：=]\s*)?([A-Za-z\u4e00-\u9fff_\-]{1,24})\s*[\]】]")
# What may still become a tag: an opening bracket and a few characters, no line break.
TAG_START = re.compile(r"\s*(?:[\[【][^\]】\n]{0,40})?")


@hookimpl
def register_taggers(register):
    register("llm", LLMTagger)


def find_label(answer: str, labels: list[str]) -> str | None:
    """The first of ``labels`` named in a model's ``answer``, in any case; None if none is."""
    by_name = {str(label).lower(): label for label in labels}
    if not by_name:
        return None
    words = "|".join(sorted(map(re.escape, by_name), key=len, reverse=True))
    m = re.search(rf"(?<![a-z])({words})(?![a-z])", answer.lower())
    return by_name[m.group(1)] if m else None


class InlineTag:
    """Reads the ``[label]`` a model was asked to put first, and holds back only what may still
    be part of it: the visible reply is everything after the tag."""

    def __init__(self, labels: list[str]):
        self.labels = labels
        self.buffer = ""
        self.passing = False  # the tag is read (or there is none): text goes straight through
        self.trim = False  # after a tag: drop the spaces and line breaks that follow it
        self.label = None

    def feed(self, delta: str) -> str:
        if self.passing:
            if self.trim:
                delta = delta.lstrip()
                self.trim = not delta
            return delta
        self.buffer += delta
        m = TAG.match(self.buffer)
        if m:
            self.label = find_label(m.group(1), self.labels)
            if self.label is None:
                log.info("the model tagged its reply %r, which is not a configured label", m.group(1))
            self.trim = True
            return self._pass(self.buffer[m.end():])
        if TAG_START.fullmatch(self.buffer) and len(self.buffer) < 48:
            return ""  # may still become a tag: wait for more
        return self._pass(self.buffer)  # no tag: the model did not follow the instruction

    def end(self) -> str:
        if self.passing:
            return ""
        return self._pass(self.buffer)  # the reply ended inside what looked like a tag

    def _pass(self, text: str) -> str:
        self.passing, self.buffer = True, ""
        return self.feed(text) if text else ""


class LLMTagger(Tagger):
    settings = {
        "llm_mode": Setting("inline", "(llm tagger) inline: the model tags its own reply; call: one short "
                                      "extra request per message.", choices=["inline", "call"]),
        "llm_provider": Setting("", "(llm tagger, call mode) the provider asked for labels, a name under providers:."),
        "fallback": Setting("model", "(llm tagger) the tagger used when the model gives no usable label: model "
                                     "or lexicon."),
        "lexicon": Setting("prompts/emotion_lexicon.yaml", "(lexicon tagger, also as the llm fallback) the word "
                                                           "lists, relative to config.yaml."),
    }

    def __init__(self, config: dict, wm):
        super().__init__(config, wm)
        where = f"{getattr(getattr(wm, 'config_path', None), 'name', 'config.yaml')}: emotion"
        classes = wm.tagger_classes
        fallback = config.get("fallback") or self.settings["fallback"].default
        if fallback == "llm" or fallback not in classes:
            known = ", ".join(sorted(set(classes) - {"llm"}))
            raise ConfigError(f"{where}.fallback: must be another tagger, one of {known}; got {fallback!r}")
        self.fallback = classes[fallback](config, wm)
        self.mode = config.get("llm_mode") or "inline"
        self.provider_name = config.get("llm_provider") or ""
        if self.mode == "call":
            if self.provider_name not in wm.config["providers"]:
                raise ConfigError(f"{where}.llm_provider: call mode needs a provider defined under providers:, "
                                  f"one of {', '.join(wm.config['providers']) or 'none'}; got {self.provider_name!r}")
        self._provider = None
        self._lock = threading.Lock()

    # -- inline ---------------------------------------------------------------------------------
    def instructions(self, labels: list[str]) -> str:
        return INSTRUCTIONS.format(labels=", ".join(labels)) if self.mode == "inline" else ""

    def reader(self, labels: list[str]):
        return InlineTag(labels) if self.mode == "inline" else None

    # -- call, and the fallback -----------------------------------------------------------------
    def tag(self, text: str, labels: list[str]) -> str:
        if self.mode == "call" and text.strip():
            label = self.classify(text, labels)
            if label:
                return label
        return self.fallback.tag(text, labels)

    def reply_label(self, text: str, labels: list[str]) -> str | None:
        return self.classify(text, labels) if self.mode == "call" and text.strip() else None

    def classify(self, text: str, labels: list[str]) -> str | None:
        """Ask the provider for the label of ``text``; None when it cannot say."""
        messages = [{"role": "system", "content": CLASSIFY.format(labels=", ".join(labels))},
                    {"role": "user", "content": text}]
        try:
            answer = self.provider().reply(messages)
        except ProviderError as e:
            log.warning("emotion from %s failed (%s); using the %s tagger", self.provider_name, e,
                        self.config.get("fallback") or self.settings["fallback"].default)
            return None
        label = find_label(answer or "", labels)
        if label is None:
            log.info("%s answered %r, not a label; using the fallback tagger", self.provider_name, (answer or "")[:40])
        return label

    def provider(self):
        """Our own instance of the named provider, asked for short, steady answers where its
        plugin allows (max_tokens, temperature)."""
        with self._lock:
            if self._provider is None:
                conf = dict(self.wm.config["providers"][self.provider_name])
                cls = self.wm.provider_classes[conf["plugin"]]
                for key, value in (("max_tokens", 16), ("temperature", 0.0)):
                    if key in cls.settings:
                        conf[key] = value
                self._provider = cls(self.provider_name, conf, self.wm)
            return self._provider

    def close(self) -> None:
        with self._lock:
            provider, self._provider = self._provider, None
        if provider is not None:
            provider.close()
        self.fallback.close()
