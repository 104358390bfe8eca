"""What the R21 review found in session 21's red flags (REDF2), over HTTP with the shipped config on both agents: a
faint where the person has not woken, is slow to wake, confused or very drowsy is 120 first (`faint_danger`), a faint
wished for or asked about as a method is not; a pregnancy or young baby's sign denied, past or asked about in general
is no flag, one happening now is; a condition's 症状 told as a story is no signs question; a keep-on question in the
message that tells the sign gets a no. And the REDF2 held list (tests/data/redf2_held.tsv, written before the fixes)."""

import re
from pathlib import Path

import pytest

from conftest import assert_linear, in_one_session

HELD = Path(__file__).parent / "data" / "redf2_held.tsv"
_TOKENS = {}


def urgent_first(reply: dict) -> bool:
    return reply["content"].startswith("⚠️") and "120" in reply["content"].split("\n")[0]


def replies(client, agent: str, texts: list[str]) -> list[dict]:
    if id(client) not in _TOKENS:
        _TOKENS[id(client)] = (client, client.register(username=f"redftwo{len(_TOKENS)}")["access_token"])
    return in_one_session(client, _TOKENS[id(client)][1], texts, agent)


def held_rows():
    for line in HELD.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            label, text = line.split("\t")
            yield label, text


def meets(label: str, reply: dict) -> bool:
    kind, _, pattern = label.partition(":")
    urgent = urgent_first(reply)
    found = bool(re.search(pattern, reply["content"], re.I)) if pattern else True
    return {"E": urgent, "N": not urgent, "K": found, "NK": not urgent and found}[kind]


@pytest.mark.parametrize("agent", ["physical", "mental"])
def test_the_held_list_over_http(client, agent):
    missed = []
    rows = list(held_rows())
    for label, text in rows:
        reply = replies(client, agent, text.split(" || "))[-1]
        if not meets(label, reply):
            missed.append((label, text, reply["content"][:160]))
    print(f"\nREDF2 held {agent}: {len(rows) - len(missed)}/{len(rows)}")
    for row in missed:
        print("MISS", row)
    assert not missed, missed
