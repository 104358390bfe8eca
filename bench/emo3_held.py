"""EMO3 held list (session 21): fresh messages written before the fix, over HTTP with the shipped config (offline companion).
Each row: agent, earlier turns, message, and checks: the user's label (u) or the reply's (r) must not be / must be, and
words the reply must not contain (x) or must contain one of (y). Prints each row and the count that hold.
    .venv/bin/python bench/emo3_held.py [audit|held|conv|all] [-v]
"""
import sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import served_shipped, in_one_session, last_user_label  # noqa: E402

GLAD = ("happy", "calm")
BAD = ("sad", "anxious", "angry", "tired")
CHEER = ("真为你高兴", "so glad", "great news", "wonderful", "congrat", "太好了", "恭喜")
ANGER = ("anger", "angry", "frustrat", "生气", "愤怒")
GRIEF = ("sorry for your loss", "so sorry", "hard news", "节哀", "难过的消息")

# (agent, before, text, checks) ; checks: dict u=/r= (tuple: forbidden; str: required), x=forbidden reply words
AUDIT = [
    ("mental", [], "这次高数真的要寄了哈哈", dict(u=GLAD, x=CHEER)),
    ("mental", [], "我妈说考不上985就别回家了", dict(u=GLAD)),
    ("physical", [], "the epidural was to die for honestly", dict(u=BAD, x=ANGER)),
    ("physical", [], "my chemo drugs are basically poison, they're killing the cancer cells", dict(x=GRIEF)),
    ("mental", [], "labour nearly killed me lol but she's perfect", dict(u="happy", r="happy")),
    ("physical", [], "I could murder a burger after this night shift", dict(x=("bloody stools", "black or", "黑便"))),
]
HELD = [
    # A. student slang for failure: not glad, no cheer
    ("mental", [], "高数挂科了，完蛋", dict(u=GLAD, x=CHEER)),
    ("mental", [], "期末考试凉了凉了", dict(u=GLAD, x=CHEER)),
    ("mental", [], "英语四级G了，又得重考", dict(u=GLAD, x=CHEER)),
    ("mental", [], "i'm cooked, the exam is tomorrow and i haven't opened the book", dict(u=GLAD, x=CHEER)),
    ("mental", [], "论文答辩怕是要寄，哈哈哈", dict(u=GLAD, x=CHEER)),
    ("mental", [], "we're so cooked for this midterm lmao", dict(u=GLAD, x=CHEER)),
    ("mental", [], "这学期又挂了两科，不知道怎么跟家里说", dict(u=GLAD, x=CHEER)),
    ("mental", [], "考研凉透了", dict(u=GLAD, x=CHEER)),
    ("mental", [], "Failed my stats module again haha, whatever", dict(u=GLAD, x=CHEER)),
    ("mental", [], "bro my gpa is cooked this semester", dict(u=GLAD, x=CHEER)),
    # family pressure on a student
    ("mental", [], "我爸说这次考不好就不给我生活费了", dict(u=GLAD, x=CHEER)),
    ("mental", [], "my parents said if I don't get into med school I've let the whole family down", dict(u=GLAD, x=CHEER)),
    # B. hyperbole of death as praise or appetite: not sad/angry, no grief, no anger
    ("physical", [], "that chocolate cake was to die for", dict(u=("sad", "angry", "anxious"), x=ANGER + GRIEF)),
    ("physical", [], "I could kill for a cup of coffee right now", dict(u=("sad", "angry", "anxious"), x=ANGER + GRIEF)),
    ("mental", [], "my daughter absolutely killed it at her piano recital", dict(u="happy")),
    ("mental", [], "the view from the hospital garden is to die for", dict(u=("sad", "angry", "anxious"), x=GRIEF + ANGER)),
    ("physical", [], "I'd murder a pizza right now, been fasting all day", dict(u=("sad", "angry", "anxious"), x=ANGER)),
    ("mental", [], "my new midwife is to die for, so kind", dict(u=("sad", "angry", "anxious"), x=ANGER + GRIEF)),
    ("mental", [], "she slayed her presentation today", dict(u=("sad", "angry", "anxious"))),
    # C. a medicine's poison/kill aimed at the illness: no grief
    ("physical", [], "the antibiotics are killing the infection but wrecking my stomach", dict(x=GRIEF)),
    ("physical", [], "radiotherapy basically poisons the tumour, right?", dict(x=GRIEF, u=("happy",))),
    ("physical", [], "化疗药就是毒药，把癌细胞毒死的同时也伤身体", dict(x=GRIEF)),
    ("physical", [], "my doctor says the chemo kills fast-growing cells, that's why my hair falls out", dict(x=GRIEF)),
    ("physical", [], "does the antifungal cream actually kill the fungus or just stop it?", dict(x=GRIEF, u=("sad", "angry"))),
    # D. joy after an ordeal
    ("mental", [], "32 hours of labour almost killed me but he's finally here and healthy", dict(u="happy", r="happy")),
    ("mental", [], "surgery was brutal but the tumour is gone!!", dict(u="happy")),
    ("mental", [], "生孩子差点要了我的命，但是宝宝很健康，好幸福", dict(u="happy")),
    ("mental", [], "that marathon nearly killed me lol but I finished!", dict(u="happy")),
    ("mental", [], "熬了三个通宵，累死了，但是论文终于交了！", dict(u=("sad", "angry", "anxious"))),
    ("mental", [], "the chemo nearly finished me off but I'm in remission now", dict(u="happy")),
    # E. calm about end-of-life planning
    ("mental", [], "We signed Dad's DNR today. It feels right, he's at peace with it and so are we.", dict(u=("happy", "angry"))),
    ("mental", [], "我和妈妈谈好了不插管的决定，大家都挺平静的", dict(u=("happy", "angry"))),
    # F. appetite/work hyperbole vs a real digestion question
    ("physical", [], "I could eat a horse after this shift", dict(x=("bloody stools", "black or", "黑便"))),
    ("physical", [], "饿死了，下了夜班想吃一大碗面", dict(x=("bloody stools", "black or", "黑便"), u=("sad", "angry"))),
    ("physical", [], "my stools have been black for two days", dict(y=("black", "stool", "doctor", "120"))),
    # G. controls (must keep working)
    ("mental", [], "I passed all my exams!!", dict(u="happy")),
    ("mental", [], "这次考试考得特别好，开心", dict(u="happy")),
    ("mental", [], "I'm so stressed about my finals next week", dict(u=GLAD)),
    ("mental", [], "my grandmother died last night", dict(u=GLAD)),
    ("mental", [], "我被挂科了，好难过", dict(u=GLAD)),
    ("mental", [], "this commute is killing me", dict(u=GLAD)),
]
# Conversations: the follow-up's reply keeps the session's topic (checked by words the reply must (y) / must not (x) have)
CONV = [
    ("mental", ["My dad has dementia and keeps asking where my mum is. She died three years ago."],
     "should I tell him the truth every time?", dict(x=("tip above is the closest", "falls"), y=("dementia", "memory", "truth", "gently", "reassur", "feel"))),
    ("mental", ["I'm gay and my parents are very religious, I haven't come out to them."],
     "what if they find out from my phone?", dict(x=ANGER + ("sleep",))),
    ("mental", ["我是同性恋，还没出柜"], "家里人还不知道", dict(x=("睡眠", "入睡", "sleep"))),
    ("mental", ["I'm failing my courses at uni abroad."], "my parents paid so much, I can't tell them",
     dict(x=ANGER)),
    ("mental", ["I'm so overwhelmed with uni work"], "how do I even start when I have 5 essays due",
     dict(x=ANGER + ("starting with 'I'", "“I”"))),
    ("mental", ["My grandma used to tell me stories every night, I miss her."],
     "I'm reading a novel where the main character dies by suicide and it reminds me of grandma's stories",
     dict(x=("fall", "跌倒"))),
    # fresh
    ("mental", ["我爸老年痴呆了，总问我妈去哪了，我妈已经走了"], "每次都要告诉他实话吗？", dict(x=("跌倒", "tip above"))),
    ("mental", ["期末有六门考试，完全复习不过来"], "我该从哪开始？", dict(x=ANGER + ("运动",))),
]


def run(rows, verbose):
    ok = 0
    with tempfile.TemporaryDirectory() as tmp, served_shipped(Path(tmp)) as served:
        client = served.client
        for i, (agent, before, text, chk) in enumerate(rows):
            token = client.register(username=f"user{i}")["access_token"]
            replies = in_one_session(client, token, before + [text], agent)
            u = last_user_label(client, token, replies[-1]["session_id"])
            r = replies[-1].get("emotion")
            content = replies[-1]["content"]
            low = content.lower()
            good = True
            for key, got in (("u", u), ("r", r)):
                want = chk.get(key)
                if want is None:
                    continue
                good &= (got == want) if isinstance(want, str) else (got not in want)
            if "x" in chk:
                good &= not any(w.lower() in low for w in chk["x"])
            if "y" in chk:
                good &= any(w.lower() in low for w in chk["y"])
            ok += good
            print(f"{'ok ' if good else 'BAD'} u={u!s:8} r={r!s:11} {text[:60]}  | {content[:(400 if verbose else 90)]!r}")
    print(f"held: {ok}/{len(rows)}")
    return ok


if __name__ == "__main__":
    which = (sys.argv[1:] or ["all"])[0]
    verbose = "-v" in sys.argv
    sets = {"audit": AUDIT, "held": HELD, "conv": CONV, "all": AUDIT + HELD + CONV}
    run(sets[which], verbose)
