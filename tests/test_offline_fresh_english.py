"""The offline companion on English as people write it (issue 12, session 16, OFFC), through the served app
with the shipped config: keywords written without apostrophes ("cant fall asleep"), a pain keyword over the
setting's word, a decimal body temperature, cramps beside a tummy bug, a rash on a joint, a racing heart a
situation sets off, a question asked first with the story after it, an asking clause that points back at the
complaint told ("how do i shift it"), an unpunctuated voice-typed question after its context or before a
symptom added "too", an older person's safety at home, a headache from cutting out coffee, common words
(toss and turn, hayfever). The sentences are fresh ones, not rows of any bench file."""

import pytest
import yaml

from conftest import ROOT, assert_linear, in_one_session, served_shipped
from test_offline_companion import has_tip
from wellmate_plugins._main_question import asking_clause

GUIDE = yaml.safe_load((ROOT / "prompts" / "offline_tips.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def ask(tmp_path_factory):
    """ask(text) -> the physical agent's reply to ``text`` in a new session, over HTTP."""
    with served_shipped(tmp_path_factory.mktemp("fresh_english")) as served:
        token = served.client.register("fresh", "fresh password")["access_token"]
        yield lambda text: in_one_session(served.client, token, [text])[0]["content"]


@pytest.mark.parametrize("text,lang,topic", [
    ("i cant fall asleep before 2 most nights what do i do", "en", "insomnia"),
    ("splitting headache since lunch and my shoulders feel tight, what can I do", "en", "headache"),
    ("I do shifts and have two kids. What could be causing the tiredness?", "en", "fatigue"),
    ("my husband's thermometer reading is 38.6 and he's shivering, what should he do", "en", "cold_fever"),
    ("ate some dodgy prawns, now I've got the runs and bad cramps, what helps", "en", "diarrhoea"),
    ("itchy red rash behind my knees, what cream helps", "en", "skin"),
    ("my heart pounds whenever I have to give a talk at work, how do I calm down", "en", "anxiety"),
    ("how much water should I drink on a hot day? I get a headache when I forget and my lips crack", "en", "water"),
    ("gained 6 kilos over christmas, how do i shift it without dieting", "en", "weight"),
    ("been coughing for a week and my nose is so stuffed up what can i do for the stuffy nose", "en", "cold_fever"),
    ("how much sleep does a teenager need my neck is stiff too", "en", "sleep"),
    ("my grandad is 90 and lives by himself, had a couple of near misses in the bathroom, how do we keep him safe",
     "en", "elderly"),
    ("cutting out coffee this week, how long do the withdrawal headaches last", "en", "caffeine"),
    ("i toss and turn till 3 every night, any advice", "en", "insomnia"),
    ("hayfever is awful this week what can i take", "en", "allergies"),
    ("我妈去年走了，这种难过什么时候才能过去", "zh", "grief"),
    ("一坐飞机就心跳得厉害，有什么办法", "zh", "anxiety"),
])
def test_fresh_everyday_questions_get_their_topics_tips(ask, text, lang, topic):
    reply = ask(text)
    assert has_tip(reply, topic, lang), reply


def test_a_decimal_that_is_no_temperature_brings_no_fever():
    from conftest import ROOT as _  # noqa: F401  (the plugins package is importable once conftest ran)
    from wellmate_plugins.provider_offline import Reading, compile_tips
    guide = compile_tips(GUIDE)
    assert "cold_fever" not in Reading(guide, "i work 40.5 hours a week and sit at a desk").hits
    assert "cold_fever" in Reading(guide, "thermometer says 38.1 this morning").hits


def test_an_unpunctuated_flood_of_question_openers_stays_linear():
    # 100,000 characters with no clause end: the run-on reading scans the text once (and once more for "too"), so
    # four times the text costs about four times the time (conftest.assert_linear), not sixteen
    for unit in ("what can i do ", "how do i my back too "):
        assert_linear(asking_clause, lambda n: unit * (n // len(unit)))
