"""The offline companion on messages from everyday life (issue 12, point 3), through the served
app with the shipped config: topics for common complaints, a symptom over an activity, follow-ups
that stay on the session's topic, cautions for special groups, no cheer for sarcasm, and the
set-up notice kept for the operator (`check`, the startup log, /test/health)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import in_one_session

ROOT = Path(__file__).resolve().parent.parent
TIPS = yaml.safe_load((ROOT / "prompts" / "offline_tips.yaml").read_text(encoding="utf-8"))["topics"]


def tips(topic, lang):
    return [tip["text"] if isinstance(tip, dict) else tip for tip in TIPS[topic]["tips"][lang]]


def caution(topic, lang):
    return TIPS[topic]["caution"][lang]


def has_tip(reply, topic, lang):
    return any(tip in reply for tip in tips(topic, lang))


@pytest.fixture
def talk(client):
    """talk(agent, *texts) -> the replies, all in one session, as a user of the app sends them."""
    token = client.register()["access_token"]
    return lambda agent, *texts: in_one_session(client, token, texts, agent)


# -- topics ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,lang", [("跑步之后膝盖外侧疼，下楼更明显", "zh"), ("My knee hurts after my runs", "en")])
def test_knee_pain_after_running_is_about_the_knee_not_exercise(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, "joints", lang), reply
    assert not has_tip(reply, "exercise", lang), reply  # no "do squats twice a week"


@pytest.mark.parametrize("text,lang", [("今天拉肚子拉了好几次", "zh"), ("I've had diarrhoea since this morning", "en")])
def test_diarrhoea_gets_diarrhoea_advice_not_a_heartburn_tip(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, "diarrhoea", lang), reply
    assert not has_tip(reply, "stomach", lang), reply


@pytest.mark.parametrize("text,lang", [("想减肥，怎么减比较健康", "zh"), ("I want to lose weight, where do I start?", "en")])
def test_wanted_weight_loss_gets_no_warning_about_unintended_loss(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, "weight", lang), reply
    assert "没有刻意减重" not in reply and "without trying" not in reply


@pytest.mark.parametrize("topic,text", [
    ("skin", "手臂上起了一片红疹子，很痒"), ("skin", "got sunburnt at the pool, my back is red"),
    ("teeth", "牙龈一刷牙就出血"), ("teeth", "I've got a toothache on the left side"),
    ("allergies", "花粉季一到就打喷嚏"), ("allergies", "hay fever is making my eyes itch"),
    ("dizziness", "早上起来有点头晕"), ("dizziness", "I feel dizzy when I stand up"),
    ("periods", "这次痛经特别厉害"), ("periods", "my period cramps are awful"),
    ("palpitations", "晚上心悸，心跳得很快"), ("palpitations", "I get palpitations at night"),
    ("cough", "干咳好几天了"), ("cough", "I can't shake this cough"),
    ("eyes", "眼睛干涩发酸"), ("back_pain", "I pulled something in my lower back"),
    ("hydration", "中暑了怎么办"), ("joints", "I sprained my ankle yesterday"),
])
def test_common_complaints_have_topics(talk, topic, text):
    lang = "en" if text.isascii() else "zh"
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, topic, lang), reply


def test_a_denied_complaint_is_not_the_topic(talk):
    reply = talk("physical", "不是腰疼，是膝盖疼")[0]["content"]
    assert has_tip(reply, "joints", "zh") and not has_tip(reply, "back_pain", "zh"), reply
    reply = talk("physical", "no stomach pain, just constipated for days")[0]["content"]
    assert has_tip(reply, "diarrhoea", "en"), reply


def test_a_question_is_not_a_denial(talk):
    """是不是 / 有没有 ask; they do not deny what follows."""
    reply = talk("physical", "吃了芒果嘴唇痒，是不是过敏了")[0]["content"]
    assert has_tip(reply, "allergies", "zh"), reply


# -- follow-ups --------------------------------------------------------------------------------------


@pytest.mark.parametrize("texts,lang", [
    (["跑完步膝盖疼", "膝盖肿了", "要不要冰敷"], "zh"),
    (["my knee hurts after running", "it's a bit swollen", "should I ice it?"], "en"),
])
def test_follow_ups_stay_on_the_sessions_topic(talk, texts, lang):
    for reply in talk("physical", *texts):
        assert has_tip(reply["content"], "joints", lang) or TIPS["joints"]["see_doctor"][lang] in reply["content"], reply


def test_a_follow_up_pointing_back_keeps_the_topic(talk):
    first, second = talk("physical", "I want to lose about 8 kg by summer", "would skipping dinner make that faster?")
    assert has_tip(second["content"], "weight", "en"), second["content"]


# -- special groups ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text,lang", [("我怀孕五个月了，有点头疼", "zh"), ("I'm pregnant and have a headache", "en")])
def test_pregnancy_gets_its_caution_and_no_painkiller_tip(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert caution("pregnancy", lang) in reply, reply
    painkiller_tip = tips("headache", lang)[2]  # "take painkillers as the label says"
    assert painkiller_tip not in reply
    assert has_tip(reply, "headache", lang), reply  # still about the headache


@pytest.mark.parametrize("text,lang", [("我儿子两岁，发烧38度5", "zh"), ("my 2 year old has a fever of 38.5", "en"),
                                       ("宝宝才两个月，摸着有点烫", "zh")])
def test_a_childs_fever_gets_the_child_caution_and_child_tips(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert caution("child_fever", lang) in reply, reply
    assert has_tip(reply, "child_fever", lang), reply
    assert not has_tip(reply, "cold_fever", lang), reply  # adult advice ("above 38.5 °C take ibuprofen") is not for children


@pytest.mark.parametrize("text,lang", [("我妈七十六了，最近老头晕", "zh"), ("my grandad keeps feeling dizzy", "en"),
                                       ("my dad is 81 and his knee is swollen", "en")])
def test_an_older_persons_complaint_gets_the_elderly_caution(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert caution("elderly", lang) in reply, reply


def test_a_group_mentioned_earlier_in_the_session_still_gets_its_caution(talk):
    replies = talk("physical", "I'm 10 weeks pregnant", "I have a bad cold, what can I take?")
    # said once in the session (session 19): on the first reply, not word for word again
    assert caution("pregnancy", "en") in replies[0]["content"], replies[0]["content"]
    assert caution("pregnancy", "en") not in replies[1]["content"], replies[1]["content"]
    # "what can I take?" in pregnancy: the pregnancy's own tip on medicines (session 17), or the cold's
    medicines = next(t["text"] for t in TIPS["pregnancy"]["tips"]["en"] if isinstance(t, dict) and "what can i take" in t["when"])
    assert has_tip(replies[1]["content"], "cold_fever", "en") or medicines in replies[1]["content"]
    assert "ibuprofen" not in replies[1]["content"].replace(caution("pregnancy", "en"), "").replace(medicines, "")


def test_no_caution_when_the_group_is_denied(talk):
    reply = talk("physical", "月经推迟了一周，我没怀孕")[0]["content"]
    assert caution("pregnancy", "zh") not in reply and has_tip(reply, "periods", "zh"), reply


# -- feelings ----------------------------------------------------------------------------------------


def test_sarcasm_gets_no_cheer(talk):
    """The feeling is the configured tagger's (wm.service("chat").tag) where it and the word match disagree:
    "太好了" reads as joy word by word, and the tagger reads the complaint."""
    reply = talk("mental", "太好了，又要加班了")[0]
    assert not any(word in reply["content"] for word in ("真为你高兴", "太好了！", "开心", "喜悦")), reply
    assert "不痛快" in reply["content"], reply
    reply = talk("mental", "oh great, my boss moved the deadline up again, just wonderful")[0]
    assert "frustrated" in reply["content"] and "lovely to hear" not in reply["content"], reply


# -- the set-up notice is for the operator ------------------------------------------------------------


def test_end_users_see_one_plain_sentence_not_operator_instructions(talk):
    replies = talk("physical", "你好", "每天应该喝多少水") + talk("mental", "hello")
    text = "\n".join(r["content"] for r in replies)
    for word in ("config.yaml", "Ollama", "providers", "plugin", "offline_tips"):
        assert word not in text, text
    assert "本地的健康指南" in replies[0]["content"] and "local health guide" in replies[2]["content"]
    assert "本地的健康指南" not in replies[1]["content"]  # once per session


def test_the_operator_is_told_in_health_check_and_log(make_wm, serve, tmp_path):
    offline_only = serve(make_wm()).client.get("/api/v1/test/health").json
    assert offline_only["status"] == "ok"  # not a failure: the shipped config has no model
    assert "no AI model" in offline_only["checks"]["model"] and "plugin: openai" in offline_only["checks"]["model"]

    out = subprocess.run([sys.executable, str(ROOT / "wellmate.py"), "--config", str(tmp_path / "config.yaml"), "check"],
                         capture_output=True, text=True, timeout=60).stdout
    assert "notice: no AI model" in out and "agents.physical" in out and "agents.mental" in out, out

    with_model = make_wm({"agents": {"physical": {"providers": ["local", "offline"]}}})
    assert with_model.setup_notice == ""
    assert serve(with_model).client.get("/api/v1/test/health").json["checks"]["model"] == "ok"


def test_the_startup_log_tells_the_operator(tmp_path):
    from conftest import ServerProcess, free_port, shipped_config

    config = shipped_config(tmp_path)
    config["server"]["port"] = port = free_port()
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    status, output = ServerProcess(path, port).stop()
    assert status == 0 and "WARNING wellmate: no AI model" in output, output
