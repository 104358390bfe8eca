"""EMO2 held list (session 20): fresh messages written before the fix, over HTTP with the shipped config.
Each row: agent, earlier turns, message, and what the user's label (u) or the reply's (r) must not / must be.
Prints each row's labels and the count of rows that hold."""
import sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import served_shipped, in_one_session, last_user_label  # noqa: E402

NOT_GLAD = ("happy", "calm")
ROWS = [  # (agent, before, text, field, forbidden labels or "=label")
    # A. a loss with a present bad feeling
    ("mental", [], "Ever since my mum passed away I can't eat properly.", "u", NOT_GLAD),
    ("mental", [], "since my wife passed I have no appetite and no energy", "u", NOT_GLAD),
    ("mental", [], "My father passed last month and I still wake at 3am every night.", "u", NOT_GLAD),
    ("mental", [], "自从老伴走了，我整夜整夜睡不着。", "u", NOT_GLAD),
    ("mental", [], "my brother passed since march, i am not sleep good until now", "u", NOT_GLAD),
    ("mental", [], "Since my dog died I cannot focus at work at all", "u", NOT_GLAD),
    ("physical", [], "I passed my driving test today, so happy!", "u", "=happy"),
    ("mental", [], "She passed all her exams and we celebrated", "u", "=happy"),
    # B. thanks for patience/time after a hard session
    ("mental", ["我很怕自己又复吸，控制不住"], "谢谢你的耐心。", "r", ("happy", "encouraging")),
    ("mental", ["I'm scared I'll start drinking again"], "thank you for your patience", "r", ("happy", "encouraging")),
    ("mental", ["最近很焦虑，晚上睡不好"], "感谢你的陪伴", "r", ("happy", "encouraging")),
    ("mental", ["i am very worry about my biopsy result"], "thanks for your time", "r", ("happy", "encouraging")),
    ("mental", ["我爸住院了，我心里很乱"], "谢谢您的安慰和鼓励", "r", ("happy", "encouraging")),
    ("mental", ["我今天升职了！特别开心"], "谢谢你的耐心", "r", "=happy"),
    ("mental", [], "谢谢你的耐心，但是我还是很害怕", "u", NOT_GLAD),
    # C. good news with a risky plan
    ("mental", [], "I feel good now, want to quit my sertraline", "r", ("happy", "encouraging")),
    ("mental", [], "感觉好多了，想把舍曲林停了", "r", ("happy", "encouraging")),
    ("mental", [], "my mood is great now so i will stop take my antidepressant tomorrow", "r", ("happy", "encouraging")),
    ("physical", [], "Feeling much better, thinking of ditching my blood pressure pills from now on", "r", ("happy", "encouraging")),
    ("physical", [], "血糖控制得挺好，打算自己把胰岛素停掉", "r", ("happy", "encouraging")),
    ("physical", [], "I feel great today, went for a long walk with my sister", "r", "=happy"),
    # D. sincere thanks
    ("mental", ["I've been stressed about work"], "thank you, that was really helpful", "u", ("angry",)),
    ("physical", ["my knee hurts after running"], "Thanks so much, this really helped me", "u", ("angry",)),
    ("physical", ["how to sleep better"], "thank you very much, your advice help me a lot", "u", ("angry",)),
    ("mental", ["最近压力好大"], "非常感谢，真的很有帮助", "u", ("angry",)),
    ("mental", [], "thanks for nothing, you never help", "u", NOT_GLAD),
    ("mental", [], "thanks so much boss, another night shift for me", "u", NOT_GLAD),
    # E. mania after stopping a mood stabiliser
    ("mental", [], "stopped my lithium and I feel invincible, haven't slept in 3 days", "u", NOT_GLAD),
    ("mental", [], "停了碳酸锂以后我觉得自己无所不能，三天没睡也不困", "u", NOT_GLAD),
    ("mental", [], "I quit my mood stabiliser last week, I feel unstoppable and my thoughts are racing", "u", NOT_GLAD),
    ("mental", [], "since i stop my lithium i am full of energy, no need sleep anymore", "u", NOT_GLAD),
    ("mental", [], "I feel so calm after my evening walk by the river", "u", "=calm"),
    ("physical", [], "stopped drinking coffee and I sleep great now", "u", ("angry", "sad", "anxious")),
]

# Written after the fix, not tuned on: a check of the same families in other words.
ROWS2 = [
    ("mental", [], "ever since grandma passed, the house feels so empty and I cry at night", "u", NOT_GLAD),
    ("mental", [], "My partner passed in June. I still set two plates at dinner.", "u", NOT_GLAD),
    ("mental", [], "my son passed his exam today!!", "u", "=happy"),
    ("mental", ["我女儿住院了，我好担心"], "谢谢你的理解和支持", "r", ("happy", "encouraging")),
    ("mental", ["I've been panicking about my scan"], "thanks for being patient with me", "r", ("happy", "encouraging")),
    ("mental", ["今天和好朋友吃饭了，特别开心"], "谢谢你的陪伴", "r", "=happy"),
    ("physical", [], "thanks a lot, very useful advice", "u", ("angry",)),
    ("mental", [], "Feeling amazing lately, so I've decided to come off my antidepressants this week", "r", ("happy", "encouraging")),
    ("mental", [], "心情好多了，我准备下周就不吃舍曲林了", "r", ("happy", "encouraging")),
    ("physical", [], "my doctor said i can stop my antibiotics now, so happy!", "r", "=happy"),
    ("physical", [], "I finally quit smoking, 30 days today!", "u", "=happy"),
    ("mental", [], "I stopped taking my quetiapine and I'm on top of the world, my thoughts are racing", "u", NOT_GLAD),
    ("mental", [], "自己把锂盐停了，现在精力无穷，每天只睡两个小时也不困", "u", NOT_GLAD),
    ("mental", [], "Went to yoga and now I feel calm and light", "u", "=calm"),
]


def main():
    ok = 0
    with tempfile.TemporaryDirectory() as tmp, served_shipped(Path(tmp)) as served:
        client = served.client
        rows = ROWS2 if sys.argv[1:] == ['2'] else ROWS
        for i, (agent, before, text, field, want) in enumerate(rows):
            token = client.register(username=f"user{i}")["access_token"]
            replies = in_one_session(client, token, before + [text], agent)
            u = last_user_label(client, token, replies[-1]["session_id"])
            r = replies[-1].get("emotion")
            got = u if field == "u" else r
            good = got == want[1:] if isinstance(want, str) else got not in want
            ok += good
            print(f"{'ok ' if good else 'BAD'} u={u:9} r={r:11} {text[:70]}  | {replies[-1]['content'][:60]!r}")
    print(f"held: {ok}/{len(rows)}")


main()
