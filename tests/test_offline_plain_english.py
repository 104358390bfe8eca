"""The offline companion on plain English (issue 12, session 16, OFFD), through the served app with the
shipped config: a complaint told where the user sits (the desk, the sitting: a setting) is the complaint's,
while stiffness from the sitting stays the sitting's; "when should I worry" asks whether a complaint is
serious, not about anxiety, and names no feeling; complaints told in everyday words (a band round the
forehead, a blood pressure reading, dark pee, cans of energy drink, blue light, a 10k). The sentences are
fresh ones, not rows of any bench file."""

import pytest
import yaml

from conftest import ROOT, in_one_session, served_shipped
from test_offline_companion import has_tip

GUIDE = yaml.safe_load((ROOT / "prompts" / "offline_tips.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with served_shipped(tmp_path_factory.mktemp("plain_english")) as served:
        token = served.client.register("plain", "plain password")["access_token"]
        yield lambda texts: in_one_session(served.client, token, texts)


@pytest.mark.parametrize("text,topic", [
    # a complaint beside the setting's words
    ("sat at my desk in the afternoons my heart sometimes flutters for a few seconds, anything to try", "palpitations"),
    ("been sitting at a desk all week and I'm shattered by mid afternoon every day, how do I get my energy back",
     "fatigue"),
    # ...but stiffness from the sitting itself is the sitting's
    ("I'm sat at my desk for ten hours and my knees feel stiff by evening, what should I do", "sitting"),
    # "worry" asking whether a complaint is serious
    ("food poisoning from a takeaway, been on the loo all night, at what point do I need to worry", "diarrhoea"),
    # complaints in everyday words
    ("there's a tight band across my forehead most evenings after work, what helps", "headache"),
    ("my readings this week were 162/98 and 155/94, how do I get them down", "blood_pressure"),
    ("labouring in the sun all day, my pee is really dark by the afternoon, what should i do", "hydration"),
    ("two cans of monster every morning just to function, how many is safe", "caffeine"),
    ("do blue light filters on my laptop actually help", "eyes"),
    ("first 10k next month and I've only ever done 3 miles, how do I train", "exercise"),
])
def test_plain_english_complaints_get_their_topics_tips(served, text, topic):
    reply = served([text])[0]["content"]
    assert has_tip(reply, topic, "en"), reply


def test_should_i_be_worried_after_a_complaint_keeps_it_and_names_no_worry(served):
    replies = served(["my ankle has been swollen since I twisted it on the stairs", "should I be worried?"])
    assert "feeling worried" not in replies[1]["content"], replies[1]["content"]
    assert not has_tip(replies[1]["content"], "anxiety", "en"), replies[1]["content"]


def test_a_rotator_cuff_is_no_blood_pressure_cuff():
    from wellmate_plugins.provider_offline import Reading, compile_tips
    guide = compile_tips(GUIDE)
    assert Reading(guide, "tore my rotator cuff lifting boxes, how long to heal").topic is None or \
        Reading(guide, "tore my rotator cuff lifting boxes, how long to heal").topic.key != "blood_pressure"
