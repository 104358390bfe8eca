"""Feelings and follow-ups new users found wrong (session 21, EMO3, audit A23: students, new mothers and carers),
through the served app with the shipped config (the offline companion). The sentences are not the audit's: the fixes are
for why it went wrong (student slang for failing read as joy from its laugh, praise and appetite said as dying or killing
read as anger, a medicine that kills the illness read as a death, joy after an ordeal that "nearly killed" the writer
made cheerless, an adult's own coming out answered as a parent's question). Figures: NOTES-EMO3.md."""

import re
from pathlib import Path

import pytest
import yaml

from conftest import cost_of
from test_emotion_emo2 import send  # noqa: F401 (a fixture: the label and the reply of a session's last message)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("text", ["概率论感觉要寄了哈哈哈", "明天答辩，我真寄了哈哈", "i'm so cooked for the anatomy final lol",
                                  "这次四级彻底凉了，哈哈"])
def test_failure_slang_with_a_laugh_is_no_joy(send, text):
    label, reply = send("mental", text)
    assert label not in ("happy", "calm") and reply["emotion"] not in ("happy", "encouraging"), (label, reply)


def test_a_parcel_sent_is_no_failure(send):
    assert send("physical", "快递昨天就寄了，今天能到吗")[0] not in ("sad", "anxious")


@pytest.mark.parametrize("text", ["the soup at the maternity ward was to die for", "my little brother slayed his recital"])
def test_praise_said_as_dying_or_killing_is_joy(send, text):
    label, reply = send("mental", text)
    assert label == "happy" and "frustrat" not in reply["content"].lower(), (label, reply)


@pytest.mark.parametrize("text", ["the antibiotics are killing off the bacteria, my doctor says",
                                  "化疗就是用毒药杀死癌细胞吧"])
def test_a_medicine_killing_the_illness_is_no_death_and_no_anger(send, text):
    label, reply = send("physical", text)
    assert label not in ("angry", "sad"), (label, reply)
    assert "hard news" not in reply["content"] and "节哀" not in reply["content"], reply


def test_a_medicine_that_kills_does_not_hide_a_real_loss(send):
    assert send("mental", "my dad was killed in an accident last month")[0] == "sad"


@pytest.mark.parametrize("text", ["the c-section nearly killed me but my twins are here and healthy",
                                  "剖腹产差点要了我半条命，但是看到宝宝好开心"])
def test_joy_after_an_ordeal_is_met_with_joy(send, text):
    label, reply = send("mental", text)
    assert label == "happy" and reply["emotion"] == "happy", (label, reply)


def test_an_ordeal_with_a_wish_stays_cheerless(send):
    assert send("mental", "the birth nearly killed me but honestly I wish it had")[1]["emotion"] not in ("happy", "encouraging")


def test_an_adults_coming_out_is_no_parents_question(send):
    label, reply = send("mental", "我是同性恋，家里很传统，还没出柜")
    assert "孩子" not in reply["content"], reply


def test_ordeal_and_aside_patterns_stay_linear_on_hostile_input():
    # the patterns themselves, on texts of two sizes, not cut to the 4,000 characters names_death reads
    ordeal = yaml.safe_load((ROOT / "prompts" / "safety.yaml").read_text(encoding="utf-8"))["ordeal_idioms"]["patterns"]
    aside = yaml.safe_load((ROOT / "prompts" / "emotion_lexicon.yaml").read_text(encoding="utf-8"))["aside"]["patterns"]
    patterns = [re.compile(p) for p in ordeal + aside]
    def read(text):
        return [list(p.finditer(text)) for p in patterns]
    texts = [("nearly killed me the the the kill all the " + "差点要了我的命" + "化疗就是" * 3) * (n // 60) for n in (25_000, 100_000)]
    small, large = cost_of(read, texts)
    assert large < small * 8, (small, large)  # 4x the text: about 4x the time, not 16x
