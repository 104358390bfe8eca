"""Emotion families of session 18 (EMOM), kept where bench/emotion_folds found them in three or
more writers' sets (and in set M): 可 opening a clause is "but" (what follows counts more), ease
or a denial belied by a worry's habit ("I just keep…", 就是老觉得…), a loss of something loved
told without a feeling word, and feelings said through the body. Checked on the lexicon (its
findings are the model's hints) and on the shipped model tagger, with sentences of their own (not
from any labelled or training set)."""

import pytest

from test_taggers import LABELS, lexicon


@pytest.fixture(scope="module")
def words():
    return lexicon.LexiconTagger({}, None)


@pytest.mark.parametrize("text,label", [
    # 可 opening a clause: the feeling after it outweighs the one before
    ("活动办得挺成功，可我连着站了一天，只想睡觉", "tired"),
    ("出院了挺高兴，可一个人回到家心里好难过", "sad"),
    # ... but not 可 inside a word, nor the intensifier
    ("今天可开心了", "happy"), ("天气不错，可以出去走走，挺开心", "happy"),
    # a claim of ease, or a denied fear, belied by a habit of the mind after "just"
    ("I'm not nervous, I just keep rereading the discharge letter", "anxious"),
    ("我一点都不紧张，就是老想着明天的检查", "anxious"),
    ("放心吧，我很淡定，就是把报告单翻来覆去地看", "anxious"),
    # ... and a plain "just" with nothing repeated leaves the claim alone
    ("我挺放心的，就是想早点知道结果", "calm"),
    ("I'm calm about it, I just want it done", "calm"),
])
def test_lexicon_frames_of_session_18(words, text, label):
    assert words.tag(text, LABELS) == label


def test_clause_but_is_a_contrast_only_at_a_clause_start(words):
    lex = words.lexicon.get()
    assert lex.contrasted("挺好的，可我还是睡不着")
    assert not lex.contrasted("可以吃点水果吗")
    assert not lex.contrasted("这事可太好了")


@pytest.mark.parametrize("text,label", [
    # a loss told plainly: what one can no longer do, a feast without someone
    ("膝盖不行了，以后不能再去爬山了，那是我最喜欢的事", "sad"),
    ("had to give up bowling because of my shoulder, I loved those Tuesday nights", "sad"),
    # an understatement of delight
    ("not bad at all, my sugars have been spot on all week", "happy"),
    # weariness said through the body, after a good day
    ("孙子的生日会办得很热闹，可我这身子骨快散架了", "tired"),
    ("a lovely day at the fair, but my legs feel like lead now", "tired"),
    # a denied fear belied by a habit of the mind
    ("I'm not scared, I just keep rereading the consent form", "anxious"),
])
def test_the_model_tagger_keeps_the_families_of_session_18(make_wm, text, label):
    assert make_wm().service("chat").tag(text) == label
