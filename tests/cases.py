"""The labelled sentences in tests/data, read by the tests and by bench/emotion."""

from pathlib import Path

import wellmate

wellmate.builtin_plugins_package()  # bench/emotion and bench/safety import this module before building a Wellmate
from wellmate_plugins._files import read_table as read_tsv  # noqa: E402,F401  (the name the tests and bench/emotion use)

DATA = Path(__file__).resolve().parent / "data"
EMOTION_LABELLED = DATA / "emotion_labelled.tsv"  # split, label, kind, text
CRISIS_CASES = DATA / "crisis_cases.tsv"  # expect, kind, text
REPLY_SAMPLES = DATA / "emotion_replies.tsv"  # label, user, text: what the mascot should show for a reply
OFFLINE_QUESTIONS = DATA / "offline_questions.tsv"  # split, topic, lang, text, follows

