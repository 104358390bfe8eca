"""The offline companion on questions its keyword lists do not name (issue 12, point 3), through
the served app with the shipped config: the trained topic model (models/offline_topics.json)
places them, overrules a weak keyword reading, can be switched off or be missing without breaking
a reply, and is retrained by `python wellmate.py train-topics`; English keywords match their other
forms; a special group mentioned in passing brings no caution."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_offline_companion import caution, has_tip, talk  # noqa: F401 (talk is a fixture)

ROOT = Path(__file__).resolve().parent.parent

# No keyword of prompts/offline_tips.yaml names their topic (test_the_keywords_alone_miss_them).
UNLISTED = [
    ("stress", "en", "everything is piling up and I can't catch my breath at work"),
    ("low_mood", "en", "I can't be arsed to do anything and nothing is enjoyable"),
    ("stress", "zh", "整个人绷着，下了班也松不下来"),
    ("stress", "zh", "最近事情一件接一件，脑子绷得紧紧的"),
]
# One keyword of a habit or activity, and the model sure of what the question is really about.
WEAKLY_READ = [
    ("smoking", "zh", "戒了一个月的烟，现在脾气特别大", "anger"),
    ("blood_sugar", "en", "my sugar reading before breakfast was 8.5", "diet"),
]


@pytest.mark.parametrize("topic,lang,text", UNLISTED)
def test_a_question_no_keyword_names_gets_its_topic_from_the_model(make_wm, serve, topic, lang, text):
    # Without the crisis classifier: on a turn it checks in on, the companion answers the feeling it
    # names back (tests/test_offline_care.py), which is not what this test is about.
    client = serve(make_wm({"safety": {"model": ""}})).client
    token = client.register()["access_token"]
    reply = client.post("/api/v1/health/physical/chat", {"text": text}, token=token).json["content"]
    assert has_tip(reply, topic, lang), reply


@pytest.mark.parametrize("topic,lang,text,keyword_topic", WEAKLY_READ)
def test_a_sure_model_overrules_a_weak_keyword_reading(talk, topic, lang, text, keyword_topic):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, topic, lang) and not has_tip(reply, keyword_topic, lang), reply


# A complaint the keywords name, and the model surer still (Composer.SURE_OVER_WORDS) of another: a stomach
# that churns before every presentation is the stomach to the keywords, the nerves to the model. (The first example,
# sneezing with a sore throat, is a cold to the keywords too since OFFEN's cold words of session 17.)
STRONGLY_READ = [
    ("anxiety", "en", "my stomach churns and I can't eat before every presentation at work, how do I calm down", "stomach"),
]


@pytest.mark.parametrize("topic,lang,text,keyword_topic", STRONGLY_READ)
def test_a_model_surer_still_overrules_a_complaint_the_keywords_name(talk, topic, lang, text, keyword_topic):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, topic, lang) and not has_tip(reply, keyword_topic, lang), reply


def test_the_keywords_alone_miss_them(make_wm, serve):
    """With providers.offline.topic_model empty the answer is what it was without a model: the
    questions above get no tip of their topic (so the model is what places them)."""
    client = serve(make_wm({"providers": {"offline": {"topic_model": ""}}})).client
    token = client.register()["access_token"]
    for topic, lang, text in UNLISTED:
        if topic == "low_mood":
            continue  # the emotion tagger reads "nothing is enjoyable" as sad, and the feeling's tip answers
        reply = client.post("/api/v1/health/physical/chat", {"text": text}, token=token).json["content"]
        assert not has_tip(reply, topic, lang), reply
    for topic, lang, text, keyword_topic in WEAKLY_READ + STRONGLY_READ:
        reply = client.post("/api/v1/health/physical/chat", {"text": text}, token=token).json["content"]
        assert has_tip(reply, keyword_topic, lang), reply


def test_an_unsure_model_leaves_the_answer_for_no_topic(talk):
    reply = talk("physical", "what do you think about the weather on mars")[0]["content"]
    assert not any(has_tip(reply, topic, "en") for topic in ("stress", "low_mood", "diet", "exercise", "sleep")), reply


def test_a_follow_up_keeps_the_sessions_topic_over_the_model(talk):
    replies = talk("physical", "I twisted my ankle on the stairs", "how long until I can play football again")
    assert has_tip(replies[1]["content"], "joints", "en"), replies[1]["content"]


@pytest.mark.parametrize("path", ["models/no-such-model.json", "broken.json"])
def test_a_missing_or_broken_model_never_breaks_a_reply_and_is_logged_once(make_wm, serve, tmp_path, caplog, path):
    (tmp_path / "broken.json").write_text('{"format": "wellmate-textmodel/1", "labels": ', encoding="utf-8")
    client = serve(make_wm({"providers": {"offline": {"topic_model": path}}})).client
    token = client.register()["access_token"]
    with caplog.at_level(logging.WARNING, logger="wellmate.provider_offline"):
        for text in ("everything is piling up and I can't catch my breath at work", "整个人绷着，下了班也松不下来"):
            r = client.post("/api/v1/health/physical/chat", {"text": text}, token=token)
            assert r.status == 200 and r.json["content"], r.text
    warnings = [rec for rec in caplog.records if "offline topic model" in rec.getMessage()]
    assert len(warnings) == 1 and "keyword lists alone" in warnings[0].getMessage(), caplog.text


def test_a_bad_confidence_setting_is_a_config_error(make_wm):
    import wellmate

    with pytest.raises(wellmate.ConfigError, match="topic_confidence"):
        make_wm({"providers": {"offline": {"topic_confidence": 2}}})


def test_train_topics_writes_a_model_and_prints_held_accuracy(tmp_path):
    from conftest import shipped_config
    from wellmate_plugins._textmodel import TextModel

    config = shipped_config(tmp_path)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    rows = (ROOT / "models" / "training" / "offline_topics.tsv").read_text(encoding="utf-8").splitlines()
    data = tmp_path / "few.tsv"
    data.write_text("\n".join(line for line in rows if not line.startswith("#"))[:12000].rsplit("\n", 1)[0] + "\n",
                    encoding="utf-8")
    out = tmp_path / "topics.json"
    done = subprocess.run([sys.executable, str(ROOT / "wellmate.py"), "--config", str(path), "train-topics",
                           "--data", str(data), "--out", str(out), "--epochs", "2"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "held split, all:" in done.stdout and "held split, en:" in done.stdout, done.stdout
    model = TextModel.load(out)
    assert set(model.labels) <= set(yaml.safe_load((ROOT / "prompts" / "offline_tips.yaml").read_text(encoding="utf-8"))["topics"])

    bad = tmp_path / "bad.tsv"
    bad.write_text("label\tkind\ttext\nno_such_topic\ten\tsomething\n", encoding="utf-8")
    refused = subprocess.run([sys.executable, str(ROOT / "wellmate.py"), "--config", str(path), "train-topics",
                              "--data", str(bad), "--out", str(tmp_path / "bad.json")],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "no_such_topic" in refused.stderr and not (tmp_path / "bad.json").exists()


def test_train_topics_reads_the_numbered_training_files_beside_the_first(tmp_path):
    """Without --data, train-topics learns from models/training/offline_topics.tsv and every
    offline_topics_N.tsv beside it (each helper writes rows to a file of its own), found next to
    config.yaml first; it prints the held split of each file alone."""
    from conftest import shipped_config

    config = shipped_config(tmp_path)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    folder = tmp_path / "models" / "training"
    folder.mkdir(parents=True)
    lines = [line for line in (ROOT / "models" / "training" / "offline_topics.tsv").read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#")]
    header, rows = lines[0], lines[1:]
    (folder / "offline_topics.tsv").write_text("\n".join([header] + rows[:300:3]) + "\n", encoding="utf-8")
    (folder / "offline_topics_2.tsv").write_text("\n".join([header] + rows[1:300:3]) + "\n", encoding="utf-8")
    (folder / "other_topics.tsv").write_text(header + "\nno_such_topic\ten\tnot read\n", encoding="utf-8")
    out = tmp_path / "topics.json"
    done = subprocess.run([sys.executable, str(ROOT / "wellmate.py"), "--config", str(path), "train-topics",
                           "--out", str(out), "--epochs", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "rows of offline_topics.tsv, offline_topics_2.tsv;" in done.stdout, done.stdout
    assert "held split of offline_topics.tsv:" in done.stdout and "held split of offline_topics_2.tsv:" in done.stdout
    assert json.loads(out.read_text(encoding="utf-8"))["meta"]["trained_on"] == ["offline_topics.tsv", "offline_topics_2.tsv"]


@pytest.mark.parametrize("topic,text", [
    ("exercise", "I haven't exercised properly in ages, how do I get going again"),
    ("exercise", "been meaning to start working out but never do"),
])
def test_english_keywords_match_their_other_forms(talk, topic, text):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, topic, "en"), reply


@pytest.mark.parametrize("text,lang,topic", [
    ("I keep yelling at my kids and hate myself after, how do I stay calm", "en", "anger"),
    ("孩子不听话，我气得想骂人", "zh", "anger"),
    ("带孩子带得好累，晚上还睡不好", "zh", None),
    ("I have two kids and no time to cook, what quick healthy dinners are there", "en", "diet"),
])
def test_a_group_mentioned_in_passing_brings_no_caution(talk, text, lang, topic):
    reply = talk("mental" if topic == "anger" else "physical", text)[0]["content"]
    assert caution("child_fever", lang) not in reply, reply
    if topic:
        assert has_tip(reply, topic, lang), reply


@pytest.mark.parametrize("text,lang", [("my son's temperature is 39 and he won't eat", "en"),
                                       ("孩子的体温一直在38度5，要不要去医院", "zh")])
def test_the_child_with_the_complaint_still_gets_the_caution(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert caution("child_fever", lang) in reply, reply



def test_a_tip_with_when_words_goes_only_to_messages_that_have_them(talk):
    """"我想减肥" once got the weight-gain tip (chosen by hash among the weight tips)."""
    for text in ("我想减肥，怎么做比较好", "我想瘦下来", "how do I lose weight safely?", "I want to lose 5 kg"):
        for reply in talk("physical", text, text + "?", text + "!"):  # three tips in turn
            assert "增重" not in reply["content"] and "gain weight" not in reply["content"].lower(), (text, reply)
    for text, words in (("我太瘦了，怎么增重", "想增重"), ("I'm underweight, how do I gain weight?", "to gain weight")):
        replies = talk("physical", text, text + "?", text + "!", text + "!!")
        assert any(words in r["content"].lower() for r in replies), (text, replies)
        # A tip for gaining answers them more closely than the general ones: never "eat less".
        assert not any("300" in r["content"] for r in replies), (text, replies)


@pytest.mark.parametrize("text,lang,expected", [
    ("跑完步膝盖外侧疼", "zh", "跑量"), ("my knee hurts after my run", "en", "pain after running"),
    ("打字打得手腕好酸", "zh", "手腕保持平直"), ("my wrist aches from the mouse all day", "en", "keep the wrist straight"),
    ("脚踝扭了一下，有点肿", "zh", None), ("rolled my ankle yesterday", "en", None),
])
def test_a_tip_about_one_joint_goes_only_to_a_message_about_that_joint(talk, text, lang, expected):
    """"跑完步膝盖外侧疼" once got the wrist tip: a tip naming one joint was drawn for any joint."""
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, "joints", lang), reply
    if expected:
        assert expected in reply, reply
    others = {"zh": ["跑量", "手腕保持平直"], "en": ["pain after running", "keep the wrist straight"]}[lang]
    assert not any(other in reply for other in others if other != expected), reply


def test_the_topic_model_learns_the_dev_sets_train_split_and_no_follow_up_alone():
    """DEV_SETS (tests/data/heldout/offline_*.tsv, each another writer): train-topics learns their train split
    (the hash split the training files have; the held eighth never), as `topic_rows` gives them; the
    follow-ups as FOLLOW_UPS says; `--no-dev-sets` (dev_sets=False) and `--data` leave them out."""
    import wellmate

    wellmate.builtin_plugins_package()
    from wellmate_plugins import provider_offline as offline
    from wellmate_plugins._textmodel import split_of

    files = offline.dev_set_files()
    assert {p.name for p in files} == offline.DEV_SET_NAMES and len(files) >= 16
    rows = offline.dev_set_rows(files, "skip")
    assert {r["file"] for r in rows} == offline.DEV_SET_NAMES
    assert all(r["split"] == split_of(r["text"]) for r in rows) and {"train", "held"} == {r["split"] for r in rows}
    assert not any(r["kind"] == "follow-up" for r in rows)
    joined = [r for r in offline.dev_set_rows(files[:1], "joined") if r["kind"] == "follow-up"]
    assert joined and all("\n" in r["text"] for r in joined)
    learnt = offline.dev_set_rows(files, offline.FOLLOW_UPS)
    held = {r["file"] for r in learnt[:1]}
    learn, measured = offline.leave_sets_out(learnt, held)
    assert measured and not {r["file"] for r in learn} & held


def test_train_topics_lists_the_dev_sets_it_learnt(tmp_path):
    """The listing train-topics prints and the model file's meta name every dev set learnt; --no-dev-sets none."""
    from conftest import shipped_config

    config = shipped_config(tmp_path)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    folder = tmp_path / "models" / "training"
    folder.mkdir(parents=True)
    lines = [line for line in (ROOT / "models" / "training" / "offline_topics.tsv").read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#")]
    (folder / "offline_topics.tsv").write_text("\n".join([lines[0]] + lines[1:200]) + "\n", encoding="utf-8")
    for extra, dev in (([], True), (["--no-dev-sets"], False)):
        out = tmp_path / f"topics-{dev}.json"
        done = subprocess.run([sys.executable, str(ROOT / "wellmate.py"), "--config", str(path), "train-topics",
                               "--out", str(out), "--epochs", "1", *extra], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        meta = json.loads(out.read_text(encoding="utf-8"))["meta"]
        assert meta["trained_on"] == ["offline_topics.tsv"]
        if dev:
            assert "learnt the dev sets too" in done.stdout and "offline_A.tsv" in done.stdout, done.stdout
            assert "offline_S.tsv" in meta["dev_sets"] and len(meta["dev_sets"]) >= 16
        else:
            assert "dev sets" not in done.stdout and meta["dev_sets"] == []


def _folds_bench():
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader("bench_offline_folds", str(ROOT / "bench" / "offline_folds"))
    spec = importlib.util.spec_from_loader("bench_offline_folds", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.mark.parametrize("argv", [[], ["--by-set", "0"], ["--by-set", "4", "--stability", "--extra", "x.tsv"],
                                  ["--stability"], ["--by-set", "4", "--only", "4"], ["--by-set", "two"]])
def test_the_leave_writer_out_bench_refuses_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as stopped:
        _folds_bench().parse(argv)
    assert stopped.value.code == 2 and "error:" in capsys.readouterr().err


def test_the_leave_writer_out_bench_reads_its_arguments():
    args = _folds_bench().parse(["--by-set", "4", "--only", "0", "3", "--follow-ups", "joined", "--runs", "2"])
    assert (args.by_set, args.only, args.follow_ups, args.runs, args.stability) == (4, [0, 3], "joined", 2, False)
    args = _folds_bench().parse(["--stability", "--extra", "x.tsv", "--order", "given"])
    assert args.stability and args.extra.name == "x.tsv" and args.order == "given" and args.by_set is None
