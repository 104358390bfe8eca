"""What the mascot shows for a reply: one of ``emotion.reply_labels``, decided from the turn and
the reply's words. Not a plugin (the leading underscore keeps the loader from registering it):
plugins/chat.py labels every reply with it, whichever tagger labels the user's messages.

A reply's label is the face the mini-program draws next to it, so it says how the companion
meets the user, not what the reply's words feel like on their own (a comforting reply mentions
sadness, but its face is caring, not sad):

- ``concerned``: a crisis reply, an urgent note (call 120 now), worrying symptoms;
- ``caring``: warmth for a sad, anxious, tired or angry user (sarcasm included: never cheer);
- ``encouraging``: progress, effort, goals;
- ``happy``: the user's good news;
- ``calm``: soothing guidance (breathing, relaxing);
- ``neutral``: plain information.

The turn decides first (safety answered or flagged the session: concerned; the user's own
label: caring for a bad feeling, happy for a good one, calm for ease), then the phrases of the ``replies:``
section of prompts/emotion_lexicon.yaml found in the reply, then the tagger's label of the
reply's text. A host whose mini-program knows only the original seven labels sets
``emotion.reply_labels`` to them, and each new label is shown as its nearest old one (`SHOWN_AS`).
"""

from __future__ import annotations

import re

from wellmate_plugins._files import WatchedYaml, data_file_candidates
from wellmate_plugins._text import Terms, normalize

REPLY_LABELS = ["caring", "concerned", "encouraging", "happy", "calm", "neutral"]
# The nearest of the original seven labels, for a mini-program that draws only those.
SHOWN_AS = {"caring": "calm", "concerned": "anxious", "encouraging": "happy"}
BAD_FEELINGS = {"sad", "anxious", "angry", "tired"}
# Which cue wins when a reply has several (a breathing exercise for a chest pain is still concerned).
CUE_ORDER = ["concerned", "calm", "encouraging", "happy", "caring"]
WARMTH_FIRST = ["concerned", "calm", "caring", "encouraging", "happy"]  # for a user who feels bad
# Where a reply's sentences end (a tip's red-flag line is one sentence of it).
SENTENCE_END = re.compile(r"(?<=[。！？!?；;\n])|(?<=\.)\s")


def phrases(spec) -> Terms:
    """The phrases of a ``replies:`` entry: a list, or a dict of zh and en lists."""
    return Terms([str(w) for w in items_of(spec)])


def items_of(spec) -> list:
    """The phrases of an entry that may be a list or a dict of zh and en lists."""
    spec = spec or []
    return [*(spec.get("zh") or []), *(spec.get("en") or [])] if isinstance(spec, dict) else list(spec)


class ReplyCues:
    """The ``replies:`` section of the lexicon file: phrases that show what a reply does."""

    def __init__(self, data: dict):
        section = data.get("replies") or {}
        self.cues = {}
        for label in CUE_ORDER:
            terms = phrases(section.get(label))
            if terms.regex is not None:
                self.cues[label] = terms
        # A red flag put as a condition ("如果出现黑便…尽快就医", "if the pain spreads, call 120") is
        # plain information in a tip, not worry about this user: its concerned cues do not count.
        # An urgent case gets safety's note, which labels the reply concerned whatever its words.
        self.conditional = phrases(section.get("conditional"))
        # How the offline companion's urgent notes open (a child's rash that doesn't fade: "First: …
        # needs a doctor now"): a reply that opens so is concerned whatever else its words say.
        self.urgent = tuple(normalize(str(w)) for w in items_of(section.get("urgent")) if normalize(str(w)))

    def count(self, label: str, terms: Terms, text: str) -> int:
        if label != "concerned" or self.conditional.regex is None:
            return sum(1 for _ in terms.find(text))
        return sum(1 for sentence in SENTENCE_END.split(text) if not self.conditional.regex.search(sentence)
                   for _ in terms.find(sentence))

    def found(self, text: str, order: list[str] = CUE_ORDER) -> str | None:
        """The label of the cues found most often in ``text`` (``order`` breaks ties); None if none."""
        counts = {label: self.count(label, terms, text) for label, terms in self.cues.items()}
        best = max(counts.values(), default=0)
        return next((label for label in order if counts.get(label) == best), None) if best else None


class ReplyEmotion:
    """Labels replies for the mascot (see the module's docstring)."""

    def __init__(self, wm, lexicon: str = "prompts/emotion_lexicon.yaml"):
        self.cues = WatchedYaml(data_file_candidates(wm, lexicon), ReplyCues,
                                without="replies are labelled from the turn alone")

    def decide(self, reply: str, user_label: str | None = None, urgent: bool = False, in_crisis: bool = False,
               words_label=lambda text: None, cheerless: bool = False) -> str:
        """One of REPLY_LABELS. ``urgent``: safety answered this turn or added a note (crisis,
        emergency); ``in_crisis``: an earlier turn of the session was a crisis; ``words_label(text)``:
        the tagger's label of the reply's words, asked only when nothing else decides; ``cheerless``:
        the message has a word of dying or killing (safety's `risk_word` flag), so whatever the
        tagger read ("I'd rather be dead than go through another day like this lol" read as happy
        for its "lol"), the face is never cheerful."""
        if urgent or (reply and normalize(reply).startswith(self.cues.get().urgent or ("\0",))):
            return "concerned"
        if cheerless:
            decided = self.decide(reply, user_label, in_crisis=in_crisis, words_label=words_label)
            return "caring" if decided in ("happy", "encouraging") else decided
        struggling = user_label in BAD_FEELINGS or in_crisis
        cue = self.cues.get().found(normalize(reply), WARMTH_FIRST if struggling else CUE_ORDER)
        if struggling:
            # Comfort, soothing guidance, a worrying symptom, or encouragement for a struggling
            # user's effort; never cheer for a bad feeling, nor encouragement for anger (a
            # sarcastic "太好了，又要加班了" is angry: its reply must not look happy).
            keeps = ("concerned", "calm", "caring") + (("encouraging",) if user_label != "angry" and not in_crisis else ())
            return cue if cue in keeps else "caring"
        if user_label == "happy":
            return cue if cue in ("concerned", "encouraging", "happy") else "happy"
        if user_label == "calm":
            # At ease ("feeling peaceful after meditating"), and the reply keeps it so: a listening
            # phrase ("I'm listening", 我在听) is warmth for someone struggling, not for a settled user,
            # so only a worry or praise of their effort changes the face (session 19, audit A20).
            return cue if cue in ("concerned", "encouraging") else "calm"
        if cue:
            return cue
        # Only joy is read from the reply's words: taggers trained on users' messages read a tip
        # about sleep as tired and the way advice is offered ("可以试试") as calm, and a tip
        # answering a question is plain information.
        return "happy" if words_label(reply) == "happy" else "neutral"


# A thank-you and nothing more ("谢谢你", "好的，谢谢", "thanks, I needed that", "Thank you for listening"): the
# close of a conversation, not news. Its words are stripped of the thanks and of the few words that go with one;
# nothing may be left ("谢谢领导，又排我夜班" keeps its shift, and is read as what it says).
_THANKS = re.compile(r"谢谢|感谢|多谢|(?<![a-z])(?:thank you|thanks|thankyou|thx|ty|cheers|ta)(?![a-z])")
_THANKS_FILLER = re.compile(
    r"好的|好吧|好滴|好嘞|好|嗯嗯|嗯|哦|噢|知道了|明白了|收到|懂了|你们|你|您|了|啦|呀|哈|啊|哦|呢|非常|太|真的|真|很|挺|"
    r"听我说|陪我聊|陪我|这么多|的建议|建议|帮助|有用|有帮助|大夫|医生|"
    # what one thanks for (session 20, EMO2: "谢谢你的耐心。" after a fear of relapse kept the tagger's happy, its 耐心 left over)
    r"的|和|耐心|时间|陪伴|安慰|鼓励|支持|理解|解答|回答|回复|关心|开导|倾听|一直|"
    r"(?<![a-z])(?:ok|okay|great|good|so|very|much|a lot|lots|again|really|that|this|it|helps|helped|helpful|useful|"
    r"i|needed|need|for|listening|the|your|help|advice|tips?|info|information|you|all|anyway|will do|got it|noted|"
    r"appreciate|appreciated|lovely|brilliant|perfect|kind|kindly|oh|ah|right|alright|sure|is|was|been|are|very|"
    r"patience|being patient|time|support|kindness|kind words|words|encouragement|comfort|company|understanding|answers?|"
    r"explanation|and|me|my|with|a|lot|being there|there|care|caring)(?![a-z])")
_THANKS_REST = re.compile(r"[\s\W_]+|(?<![a-z])(?:s|re|ve|ll)(?![a-z])")  # ("that's", "you're": their endings)


def thanks_only(text: str | None) -> bool:
    """Whether ``text`` is a thank-you and nothing more (see `_THANKS`)."""
    text = normalize(text or "")
    if not text or len(text) > 80 or not _THANKS.search(text):
        return False
    return not _THANKS_REST.sub("", _THANKS_FILLER.sub(" ", _THANKS.sub(" ", text)))


def closing_label(session_label: str | None, allowed: list[str] = REPLY_LABELS) -> str:
    """The face for the reply to a thank-you: the session's feeling (``session_label``, the latest label of the user's
    earlier messages that was not neutral), not the tagger's cheer for the word "thanks" (A21: "谢谢你" after a worried
    daughter's turns was met with "真为你高兴！", plain tips after a thank-you labelled happy). Warmth after a hard
    feeling, plain otherwise; a good session's good news stays happy."""
    label = "caring" if session_label in BAD_FEELINGS else session_label if session_label in ("happy", "calm") else "neutral"
    return label if label in allowed else "neutral"


# What safety counted on a turn, and what the user's message then is at least: not happy or calm.
AT_RISK = {"crisis", "check_in", "unsafe_reply", "model_judgement"}


def user_label(label: str, raised: set, labels: list[str]) -> str:
    """The label of a user's message, given what safety counted on the session for it
    (``raised``): a message answered with a crisis reply or a check-in is sad rather than happy or
    calm (words like "better off" or "for good" read as cheer; a message about ending one's life
    is not), one that got an urgent note (a red flag: chest pain) anxious rather than so."""
    if label not in ("happy", "calm") or not raised:
        return label
    instead = "sad" if raised & AT_RISK else "anxious"
    return instead if instead in labels else label


def shown(label: str, allowed: list[str]) -> str:
    """``label`` as one of ``allowed`` (emotion.reply_labels): itself, else its nearest original
    label (caring -> calm, concerned -> anxious, encouraging -> happy), else neutral, else the first."""
    for candidate in (label, SHOWN_AS.get(label), "neutral"):
        if candidate in allowed:
            return candidate
    return allowed[0] if allowed else "neutral"
