"""Issue 12, point 2 (session 12): negation both ways, a denied denial, left-out sarcasm and a few
signs of irony, over HTTP with the shipped config; and the emotion rows that teach the model
leave the crisis classifier alone. Sentences written for this test, in no training file."""

import pytest

from conftest import served_shipped
from test_emotion_openers import say


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with served_shipped(tmp_path_factory.mktemp("negation")) as served:
        served.token = served.client.register()["access_token"]
        yield served


@pytest.mark.parametrize("text, label", [
    ("not even annoyed tbh, it happens", "calm"),                 # "even" stands between
    ("no more panicking before flights, I've done six this year", "calm"),
    ("打完针没那么疼了", "calm"),                                  # pain eased: 疼 alone is no feeling
    ("一点都不开心，周末又是一个人", "sad"),
    ("说不开心是假的，我的论文终于发表了", "happy"),                  # a denied denial
    ("周末睡了两天还是没缓过来", "tired"),                           # rest that did not help: weariness, not worry
    ("however long I sleep I never feel rested", "tired"),
    ("我不想再忍了，他每次都放我鸽子", "angry"),
    # emotion_F's (dev): the model read "anxious", the lexicon its negation, which now stands
    ("i'm not anxious about the results now, the doctor explained everything", "calm"),
])
def test_negation_reads_both_ways(site, text, label):
    assert say(site, [text])[0] == label


@pytest.mark.parametrize("text", [
    "congrats to me, locked out of my flat in the rain",
    "nothing says weekend like a burst pipe in the kitchen",
    "时机选得真好，刚出门就下暴雨",
])
def test_a_sign_of_irony_gets_no_cheer(site, text):
    user, shown, _ = say(site, [text])
    assert user not in ("happy", "calm") and shown not in ("happy", "encouraging"), (user, shown)


@pytest.mark.parametrize("text", ["nice, the whole team got a bonus except me", "真不错，大家都涨工资了，就我没有"])
def test_left_out_while_everyone_else_gets_it_is_not_cheer(site, text):
    user, shown, _ = say(site, [text])
    assert user == "sad" and shown != "happy", (user, shown)


def test_the_emotion_model_learns_rows_the_crisis_classifier_does_not(make_wm):
    """The crisis trainer reads a fixed list of emotion files as everyday rows (EVERYDAY_FILES);
    the emotion trainer reads them all, so emotion rows can be added without a crisis retrain."""
    wm = make_wm()
    safety_module = wm.pm.get_plugin("safety")
    from wellmate_plugins.tagger_model import training_rows
    emotion_files = {r["file"] for r in training_rows(wm.base)}
    everyday = {p.name for p in safety_module.everyday_files(wm)}
    assert everyday == set(safety_module.EVERYDAY_FILES) and everyday < emotion_files
    assert {"emotion_en_6.tsv", "emotion_zh_6.tsv"} <= emotion_files - everyday
    assert set(wm.service("safety").model.meta["trained_on"]) & emotion_files == everyday
