"""Emotion frames of session 16 (EMO2), found from where English and Chinese failed on the dev
sets F-J: a negation of another statement after a feeling, A-not-A questions, a denied worry belied
by what is done over and over, ease said with a raised eyebrow, rhetorical anger, worry shown by
acts, losses for good. Checked on the lexicon (its findings, which the model also sees as hints)
and on the shipped model tagger, with sentences of their own (not from any labelled set)."""

import pytest

from test_taggers import LABELS, lexicon


@pytest.fixture(scope="module")
def words():
    return lexicon.LexiconTagger({}, None)


@pytest.mark.parametrize("text,label", [
    # a new subject before the negation: the negation is not the feeling's
    ("I'm so upset I can't go to the match anymore", "sad"),
    ("so sad I won't coach the kids anymore", "sad"),
    # ... while a feeling said to be gone stays gone
    ("the worry isn't there anymore", "calm"),
    ("I'm not anxious about the scan anymore", "calm"),
    # A-not-A questions ask; their 不 negates nothing
    ("我是不是太紧张了", "anxious"), ("会不会很累啊", "tired"), ("你是不是不开心", "sad"),
    # 没办法/没法/不能 negate, and negated in turn the feeling stands
    ("我就是没办法开心起来", "sad"), ("我没法不担心他", "anxious"),
    # a denied worry belied by a thing done over and over, and only then
    ("I'm not nervous, I'm just refreshing the results page every five minutes", "anxious"),
    ("我不紧张，只是每十分钟看一次邮箱", "anxious"),
    ("not nervous, just sleepy, up three times last night", "tired"),
    # indignation put as a question, and being brushed off
    ("how is it acceptable to cancel surgery the night before??", "angry"),
    ("why does nobody listen when I say the dose is wrong", "angry"),
    ("the GP brushed me off again", "angry"),
    ("打个电话说一声有那么难吗", "angry"), ("一肚子火没处发", "angry"),
    # worry shown by acts: checking again and again, someone out of reach
    ("I keep checking the monitor, her numbers look off", "anxious"),
    ("my brother hasn't answered since lunch and he was driving", "anxious"),
    ("爸爸电话一直打不通，他一个人在家", "anxious"),
    # losses for good
    ("we lost my grandpa on Sunday", "sad"), ("the doctor says the hearing won't come back", "sad"),
    ("以后再也不能打篮球了", "sad"),
    # indifference is no anger
    ("都行，无所谓", "neutral"),
])
def test_lexicon_frames(words, text, label):
    assert words.tag(text, LABELS) == label


@pytest.mark.parametrize("text,sarcastic,label", [
    # ease said with a raised eyebrow is worry, also after a cheer and a mishap ("more tests")
    ('呵呵，医生让我"再等等看"，真放心', True, "anxious"),
    ("oh nice, they want more tests next week, totally relaxed about it", True, "anxious"),
])
def test_ease_said_with_irony_is_worry(words, text, sarcastic, label):
    assert words.sarcastic(text) is sarcastic
    assert words.tag(text, LABELS) == label


@pytest.mark.parametrize("text,label", [
    ("I'm so upset I can't go to the match anymore", "sad"),
    ("how is it acceptable to cancel surgery the night before??", "angry"),
    ("I'm not nervous, I'm just refreshing the results page every five minutes", "anxious"),
    ("我是不是太紧张了，明天才复查", "anxious"),
    ('呵呵，医生让我"再等等看"，真放心', "anxious"),
    ("my brother hasn't answered since lunch and he was driving", "anxious"),
])
def test_the_model_tagger_keeps_the_frames(make_wm, text, label):
    assert make_wm().service("chat").tag(text) == label
