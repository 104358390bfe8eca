"""The offline companion answers questions about the user's own records and medicine reminders
(session 19, audit A21), over real HTTP with records stored through the API: the figures of the
period asked (7 days by default), the trend, the guideline's grade, the caution the figures call
for, then the tip; no records of that kind: says so and how to add one. General questions that
look alike, and a reading told in the message, keep their answers. Held lists:
tests/data/own_records_held_REC*.tsv (bench/own_records measures them over HTTP)."""

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import in_one_session
from wellmate_plugins._own_records import asked_of_records
from wellmate_plugins._text import normalize

DATA = Path(__file__).parent / "data"
CHAT = "/api/v1/health/physical/chat"


def ago(days: float, hour: int) -> str:
    now = datetime.now(timezone.utc)
    at = (now - timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return min(at, now - timedelta(minutes=1)).isoformat()


def user(client, name="rec"):
    return client.register(name, settings={"timezone": "UTC"})["access_token"]


def store(client, token, items):
    r = client.post("/api/v1/health/data/batch", {"items": items}, token=token)
    assert r.status in (200, 201), r.text


A21 = [{"type": "blood_pressure", "value": v, "recorded_at": ago(d, h)} for d, h, v in
       [(6, 8, "152/94"), (6, 20, "146/90"), (4, 8, "158/96"), (4, 20, "149/91"), (2, 8, "162/98"), (1, 8, "155/95")]] + \
      [{"type": "blood_glucose", "value": 8.9, "recorded_at": ago(5, 7)},
       {"type": "blood_glucose", "value": 11.4, "recorded_at": ago(1, 7)},
       {"type": "weight", "value": 71.0, "recorded_at": ago(6, 7)},
       {"type": "weight", "value": 73.2, "recorded_at": ago(1, 7)}]


def ask(client, token, text) -> str:
    r = client.post(CHAT, {"text": text}, token=token)
    assert r.status == 200, r.text
    return r.json["content"]


def test_audit_a21_questions_are_answered_from_the_records(client):
    token = user(client)
    store(client, token, A21)
    r = client.post("/api/v1/reminders", {"title": "吃药", "text": "该吃华法林和降压药了",
                                          "rule": {"kind": "daily", "times": ["08:00", "20:00"]}}, token=token)
    assert r.status == 201, r.text

    reply = ask(client, token, "How was my blood pressure this week?")
    assert reply.startswith("From your records for the last 7 days")
    assert "6 records, average 153.7/94 mmHg (146/90–162/98 mmHg)" in reply and "trend up" in reply
    assert "grade 1 (mild) high blood pressure" in reply and "please see a doctor" in reply
    assert reply.index("see a doctor") < reply.index("blood pressure, a") if "blood pressure, a" in reply else True
    assert "tip" in reply  # ...then the tip

    for text in ("我这周血压怎么样？", "我的血压算高吗？要不要看医生？"):
        reply = ask(client, token, text)
        assert "按你的记录，最近 7 天" in reply and "平均 153.7/94 mmHg" in reply
        assert "「1级高血压（轻度）」" in reply and "请带着这些记录去看医生" in reply and "建议" in reply

    reply = ask(client, token, "What has my blood sugar been like?")
    assert "2 records, average 10.2 mmol/L (8.9–11.4 mmol/L)" in reply and "see a doctor" in reply

    reply = ask(client, token, "我体重最近有变化吗？")
    assert "体重：2 条记录" in reply and "最近 73.2 kg" in reply and "趋势上升 2.2 kg" in reply

    reply = ask(client, token, "When do I take my medicine?")
    assert "every day at 08:00, 20:00" in reply and "beyond what I can answer" not in reply
    reply = ask(client, token, "我今天的药吃了吗")
    assert "每天 08:00、20:00" in reply and "我看不到你有没有真的吃" in reply


def test_no_records_of_the_kind_says_so_and_how_to_add_one(client):
    token = user(client)
    reply = ask(client, token, "how's my BP been lately?")
    assert "You have no blood pressure records yet." in reply and "Add one under health records" in reply
    assert "blood pressure" in reply.split("Add one")[1]  # the tip still follows
    reply = ask(client, token, "最近血糖高不高")
    assert "你还没有血糖记录。" in reply and "健康记录里添上一条" in reply
    reply = ask(client, token, "我几点吃药？")
    assert "你还没有设吃药提醒" in reply or "撑不住" in reply  # (the safety plugin may check in on pills)


def test_one_kind_only_and_the_period_asked(client):
    token = user(client)
    store(client, token, [{"type": "weight", "value": 80.0, "recorded_at": ago(20, 7)},
                          {"type": "weight", "value": 78.5, "recorded_at": ago(12, 7)}])
    reply = ask(client, token, "am I losing weight?")  # the default week has none: the latest before is named
    assert "You have no weight records in the last 7 days" in reply and "the latest is 78.5 kg" in reply
    reply = ask(client, token, "how's my weight trending over the past 30 days?")
    assert "last 30 days" in reply and "2 records, average 79.25 kg" in reply and "trend down 1.5 kg" in reply
    reply = ask(client, token, "我这个月瘦了没有")
    assert "最近 30 天" in reply and "趋势下降 1.5 kg" in reply
    reply = ask(client, token, "Is my sugar under control?")  # another kind: none of it
    assert "You have no blood glucose records yet." in reply


def test_a_reading_in_the_emergency_range_puts_the_emergency_number_first(client):
    token = user(client)
    store(client, token, [{"type": "blood_pressure", "value": "186/112", "recorded_at": ago(1, 8)},
                          {"type": "blood_pressure", "value": "150/92", "recorded_at": ago(2, 8)}])
    reply = ask(client, token, "are my blood pressure readings ok?")
    assert "emergency range" in reply and "highest 186/112" in reply and "call 120 now" in reply
    reply = ask(client, token, "我这几天的血压正常吗")
    assert "危险范围" in reply and "请立即拨打 120" in reply


GENERAL = ["what is a normal blood pressure?", "how can I lower my blood pressure without medication?", "血压多少算高？",
           "my dad's blood pressure has been high lately, what should he do?", "我妈最近血糖怎么样才算控制好",
           "does coffee raise blood pressure?", "how often should I check my blood pressure?"]


def test_general_questions_and_a_reading_told_keep_their_answers(client):
    token = user(client)
    store(client, token, A21)
    for text in GENERAL:
        reply = ask(client, token, text)
        assert "records" not in reply and "记录" not in reply.split("记下来")[0], (text, reply)
    reply = ask(client, token, "my BP is 150/95, is that high?")
    assert reply.startswith("The reading you mention, 150/95") and "your records" not in reply
    reply = ask(client, token, "我血压 150/95 算高吗")
    assert "你提到的读数 150/95" in reply and "按你的记录" not in reply


def test_the_companion_works_without_the_records_and_reminders_plugins(make_wm, serve, tmp_path):
    shutil.copytree(Path(__file__).parent.parent / "prompts", tmp_path / "prompts")
    prompt = tmp_path / "prompts" / "physical.txt"  # (nothing fills $health_summary without the records plugin)
    prompt.write_text(prompt.read_text(encoding="utf-8").replace("${health_summary}", "").replace("$health_summary", ""), encoding="utf-8")
    client = serve(make_wm({"plugins": {"disabled": ["records", "reminders"]}})).client
    token = user(client)
    reply = ask(client, token, "How was my blood pressure this week?")
    assert "records" not in reply and "blood pressure" in reply  # the general answer, as before
    reply = ask(client, token, "我今天的药吃了吗")
    assert "提醒" not in reply.split("温馨提示")[0] or "闹钟" in reply


@pytest.mark.parametrize("name", ["own_records_held_REC.tsv", "own_records_held_REC2.tsv"])
def test_the_held_lists_are_read_as_labelled(name):
    rows = [line.split("\t", 1) for line in (DATA / name).read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]
    wrong = []
    for label, text in rows:
        asked = asked_of_records(normalize(text))
        if (asked.kind if asked else "general") != label:
            wrong.append((label, text, asked))
    assert not wrong


def test_a_long_message_is_no_question_about_ones_records():
    # The patterns read only a message of question length (160 characters; A21's were under 40), so a
    # hostile message costs what normalizing it costs (tests/test_hostile_input.py sends 100,000 to the chat).
    assert asked_of_records(normalize("how's my bp been lately? " * 4000)) is None
    assert asked_of_records(normalize("我这周血压怎么样？" * 10000)) is None
    assert asked_of_records(normalize("x" * 120 + ". how's my bp been lately?")) is not None


def test_a_follow_up_naming_another_measure_after_a_question_about_ones_records(client):
    token = user(client)
    store(client, token, A21)
    first, then = in_one_session(client, token, ["我这周血压怎么样？", "那血糖呢？"])
    assert "平均 153.7/94 mmHg" in first["content"] and "血糖：2 条记录，平均 10.2 mmol/L" in then["content"]
    first, then = in_one_session(client, token, ["How was my blood pressure this week?", "and my weight?"])
    assert "Weight: 2 records, average 72.1 kg" in then["content"]
    # ...but not after a general question: "那血糖呢" after 血压多少算高 is general too
    first, then = in_one_session(client, token, ["血压多少算高？", "那血糖呢？"])
    assert "按你的记录" not in then["content"]
