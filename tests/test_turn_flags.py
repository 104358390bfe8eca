"""Plugins tell each other facts through the turn's flags, not sentences: the safety plugin's
instructions to models (prompts/safety.yaml: red_flag_system, crisis_system) are prose for models,
and rewording them must not change what the offline companion says (it once regex-matched
"already shown above" and "spoke of suicide or self-harm")."""

import os

import pytest

from test_chat import stream
from test_hooks import use_plugin

CONVERSATIONS = [
    ["突然胸口痛，喘不上气"],  # the safety plugin's red-flag note is shown: the companion adds none
    ["Sudden chest pain and I can't breathe"],
    ["我想自杀", "嗯，谢谢"],  # a crisis earlier in the session: gentle, no notice under it (a yes that goes on, "嗯，我在听", is the crisis reply again since session 16)
    ["I want to kill myself", "ok. thanks for listening"],
    ["最近活着好累，感觉什么都没意思"],  # a check-in on this turn
]


def talk(client, token, texts: list[str], streamed: bool) -> list[str]:
    replies, session_id = [], None
    for text in texts:
        body = {"text": text, **({"session_id": session_id} if session_id else {})}
        if streamed:
            reply = stream(client, "physical", body, token)[-1][1]
        else:
            reply = client.post("/api/v1/health/physical/chat", body, token=token).json
        session_id = reply["session_id"]
        replies.append(reply["content"])
    return replies


def reword(tmp_path):
    """What a user editing prompts/safety.yaml might write instead: the same instruction to a
    model, other words."""
    path = tmp_path / "prompts" / "safety.yaml"
    text = path.read_text(encoding="utf-8")
    for old, new in [("already shown above your reply", "sits on top of what you write"),
                     ("spoke of suicide or self-harm", "talked about ending their life")]:
        assert old in text
        text = text.replace(old, new)
    st = path.stat()
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))  # re-read on the next message


@pytest.mark.parametrize("streamed", [False, True])
def test_rewording_the_safety_prompts_for_models_changes_no_offline_reply(make_wm, serve, tmp_path, streamed):
    client = serve(make_wm()).client  # the shipped config: the offline companion answers
    token = client.register("before")["access_token"]
    before = [talk(client, token, texts, streamed) for texts in CONVERSATIONS]
    assert before[0][0].startswith("⚠️") and before[0][0].count("120") == 1  # one note, not two
    assert "本地的健康指南" not in before[2][1] and "12356" in before[4][0]
    reword(tmp_path)
    token = client.register("after")["access_token"]
    assert [talk(client, token, texts, streamed) for texts in CONVERSATIONS] == before


def test_the_safety_plugin_sets_the_turns_flags(make_wm, serve, tmp_path):
    """What the offline companion (and any provider or plugin) reads, seen by a plugin of the tests' own."""
    use_plugin(tmp_path, "probe")
    wm = make_wm()
    client = serve(wm).client
    token = client.register()["access_token"]
    for texts in [["突然胸口痛，喘不上气"], ["我想自杀", "嗯，谢谢"], ["最近活着好累，感觉什么都没意思"], ["怎么才能睡得更好？"]]:
        talk(client, token, texts, False)
    turns = [turn for who, turn in wm.service("probe").seen if who == "after_reply"]
    seen = [{k: v for k, v in turn.flags.items() if k not in ("probe", "provider")} for turn in turns]
    none = {"after_reminder": False, "crisis": False, "check_in": False, "crisis_earlier": False, "notes_shown": [],
            "risk_word": False}
    assert seen == [{**none, "notes_shown": ["chest_and_breath"]}, {**none, "crisis": True, "risk_word": True},
                    {**none, "crisis_earlier": True}, {**none, "check_in": True}, none]
    # ...and the chat's: the provider asked (none for the crisis reply, which no provider wrote)
    assert [turn.flags.get("provider") for turn in turns] == ["offline", None, "offline", "offline", "offline"]


def test_the_companion_speaks_as_the_turns_agent_whatever_its_prompt_says(make_wm, serve, tmp_path):
    """The shipped agents are named physical and mental; a host who rewords the mental prompt
    (here it speaks of 身体 first) still gets the mental voice: the turn says whose turn it is.
    Before, the companion guessed from the prompt's first health word and greeted as the physical agent."""
    wm = make_wm()  # copies prompts/ into tmp_path, where a host edits them (re-read when changed)
    prompt = tmp_path / "prompts" / "mental.txt"
    prompt.write_text("你是一位关注身体和心理的陪伴者，温和地倾听。\n" + prompt.read_text(encoding="utf-8"), encoding="utf-8")
    client = serve(wm).client
    token = client.register()["access_token"]
    reply = client.post("/api/v1/health/mental/chat", {"text": "你好"}, token=token).json["content"]
    assert "心理健康" in reply and "身体健康" not in reply, reply
