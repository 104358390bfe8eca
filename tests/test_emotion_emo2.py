"""Emotion labels new users found wrong (session 20, EMO2), through the served app with the shipped config. The
sentences are not the reports': the fixes are for why it went wrong (a person "passed" read as an exam passed, a
thank-you for patience or time not read as a close, a sincere thank-you read as sarcasm, good news with a plan to stop a
medicine met with cheer, a high after stopping a mood stabiliser read as calm). Figures: NOTES-EMO2.md."""

import re
from pathlib import Path

import pytest
import yaml

from conftest import cost_of, in_one_session, last_user_label

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def send(client):
    """send(agent, *texts) -> (the user's label of the last message, the last reply), in one session."""
    def go(agent, *texts):
        token = client.register()["access_token"]
        replies = in_one_session(client, token, texts, agent)
        return last_user_label(client, token, replies[-1]["session_id"]), replies[-1]
    return go


@pytest.mark.parametrize("text", ["Ever since my mum passed, I can't eat properly.", "My grandad passed last spring and I miss him",
                                  "since my wife passed I cannot sleep"])
def test_a_person_passed_is_a_loss(send, text):
    label, reply = send("mental", text)
    assert label not in ("happy", "calm") and reply["emotion"] not in ("happy", "encouraging"), (label, reply)


@pytest.mark.parametrize("text", ["my daughter passed her driving test!", "I passed my exam, so happy"])
def test_an_exam_passed_stays_happy(send, text):
    assert send("mental", text)[0] == "happy"


@pytest.mark.parametrize("texts", [["我很怕自己控制不住又喝酒", "谢谢你的耐心和理解"],
                                   ["I'm so worried about my scan results", "thank you for your time and support"]])
def test_a_thank_you_for_patience_after_a_worry_is_a_caring_close(send, texts):
    assert send("mental", *texts)[1]["emotion"] == "caring"


@pytest.mark.parametrize("text", ["thank you, that was really useful", "非常感谢，很有帮助", "thanks so much, your tips help me a lot"])
def test_a_sincere_thank_you_is_not_sarcasm(send, text):
    assert send("physical", text)[0] != "angry"


@pytest.mark.parametrize("text", ["thanks for nothing, useless", "thanks so much boss, weekend shift again"])
def test_sarcastic_thanks_stay_unhappy(send, text):
    assert send("mental", text)[0] not in ("happy", "calm")


@pytest.mark.parametrize("text", ["I'm feeling great now so I'm going to stop my fluoxetine",
                                  "心情好多了，打算把药停了", "doing so much better, want to ditch my inhaler for good"])
def test_good_news_with_a_plan_to_stop_a_medicine_is_not_cheered(send, text):
    reply = send("mental", text)[1]
    assert reply["emotion"] not in ("happy", "encouraging"), reply
    assert not reply["content"].startswith(("That's lovely", "How nice", "真为你高兴", "太好了")), reply["content"]


@pytest.mark.parametrize("text", ["my doctor said I can stop my antibiotics, so happy!", "quit smoking a month ago and I feel great"])
def test_a_stop_the_doctor_planned_or_a_habit_quit_is_still_good_news(send, text):
    assert send("mental", text)[1]["emotion"] == "happy"


@pytest.mark.parametrize("text", ["came off my lithium and I feel unstoppable, don't need sleep", "把碳酸锂停了，感觉自己天下无敌"])
def test_a_high_after_stopping_a_mood_stabiliser_is_not_calm(send, text):
    label, reply = send("mental", text)
    assert label not in ("happy", "calm") and reply["emotion"] not in ("happy", "calm", "encouraging"), (label, reply)


def test_a_high_with_a_deadly_plan_is_concerned(send):
    assert send("mental", "stopped my lithium, I feel invincible, off to the rooftop to fly")[1]["emotion"] == "concerned"


def test_the_risky_plan_patterns_stay_linear_on_hostile_input():
    # the patterns themselves, on texts of two sizes, not cut to the 4,000 characters `risky_plan` reads
    plans = yaml.safe_load((ROOT / "prompts" / "safety.yaml").read_text(encoding="utf-8"))["cheerless_plans"]
    patterns = [re.compile(p) for key in ("stop_medicine", "unless", "mania") for p in plans[key]]
    def read(text):
        return [p.search(text) for p in patterns]
    texts = [("stop my " + "a" * 40 + " 停" + "药" * 3) * (n // 53) for n in (25_000, 100_000)]
    small, large = cost_of(read, texts)
    assert large < small * 8, (small, large)  # 4x the text: about 4x the time, not 16x
