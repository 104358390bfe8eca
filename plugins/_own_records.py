"""Whether a message asks about the user's own records (docs/records.md) or medicine reminders,
which kind, and over what period: "how's my BP been lately?", 我这周血压怎么样, "am I losing
weight?", 我几点吃药, "did I take my pills today?". The offline companion answers such a question
from the records (it has no model to read $health_summary), before its tip.

Not a list of sentences: a question is about one's records when it names a measure of the user's
own (my blood pressure, 我的血糖, 最近血糖: a period word makes a bare measure the user's; I weigh,
did I sleep, am I losing weight) and asks how it is or was (a state word: been, lately, high,
trend, 怎么样, 高不高, 变化, 记录, 多少; or a period), and is none of the general questions that
look alike: how to change it ("how can I lower my blood pressure", 怎么降, 吃什么), what it should
be (多少算高, "what should my sugar be"), why, whether something affects it ("does coffee raise my
blood pressure"), a reading told in the message itself ("my BP is 150/95, is that high?" keeps its
own note), or someone else's ("my dad's blood pressure", 我妈最近血糖).

Every pattern is bounded and reads the message once: linear in its length.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from wellmate_plugins._text import OTHER_PERSON

# The measures, by record type (plugins/record_types.py), in words a user asks with. "sugar" alone
# is blood sugar only as "my sugar(s)"; "weight" words include what one says of it (胖了, 瘦了).
MEASURES = {
    "blood_pressure": (r"血压|高压|低压",
                       r"blood[\s-]*pressure|(?<![a-z])b\.?p(?![a-z])|(?<=my )pressure(?! (?:at|from|of|to)\b)"),
    "blood_glucose": (r"血糖|糖化",
                      r"blood[\s-]*sugars?|(?<![a-z])(?:glucose|a1c|hba1c)(?![a-z])|(?<=my )sugars?(?![a-z])|"
                      r"(?<=my )(?:sugar|glucose) (?:levels?|readings?|numbers?)"),
    "weight": (r"体重|多重|几斤|几公斤|(?:胖|瘦|重|轻)了|掉秤|长肉",
               r"(?<![a-z])(?:weight|weigh|weighed|kilos|kgs?|pounds|lbs)(?![a-z])"),
    "sleep": (r"睡眠|睡了多久|睡了几|睡得(?:够|多|少|怎么样|好不好)|睡多久|睡几个?小时|睡了多少",
              r"(?<![a-z])(?:sleep|slept|sleeping)(?![a-z])"),
    "steps": (r"步数|走了多少步|走多少步|走了几步|多少步",
              r"(?<![a-z])(?:steps|step count)(?![a-z])|(?<![a-z])(?:did|have) i walk(?:ed)?"),
    "heart_rate": (r"心率|心跳|脉搏",
                   r"heart[\s-]*rate|(?<![a-z])(?:pulse|heartbeat)(?![a-z])"),
    "temperature": (r"体温",
                    r"(?<![a-z])(?:temperature|temp)(?![a-z])"),
    "water": (r"喝水|饮水|喝了多少水|喝的水",
              r"(?<![a-z])water(?![a-z])|(?<![a-z])(?:did|have) i (?:drink|drunk|drank)"),
}
MEDICINE = (r"吃药|服药|用药|药(?:吃|服)|的药|降压药|药物",
            r"(?<![a-z])(?:medicines?|medications?|meds|pills?|tablets?|doses?|insulin)(?![a-z])")

# A measure named as a modifier of a medicine or a device is no question about its values: "my
# blood pressure medication", "血压计", "血糖仪", 降压药 (the medicine kind reads those).
MODIFIER = re.compile(r"\s*(?:medications?|medicines?|meds|pills?|tablets?|monitor|machine|cuff|meter|strips?|checks?|tests?|"
                      r"appointments?|clinic|"
                      r"药|计|仪|试纸)")

PERIOD_ZH = r"最近|近来|这段时间|这阵子|这些天|这几天|这两天|这周|本周|这星期|这个星期|这礼拜|上周|上个星期|这个月|本月|上个月|今天|昨天|" \
            r"[一二两三四五六七八九十\d]+\s*(?:天|周|个?星期|个?月)|半个月|今年"
_CLAUSE = r"[^，,。.；;！!？?\n]"  # within one clause

# The frames of a question about one's own measure. {m} is the measure's words.
# English: a question word (or a request to see) opening the clause, then "my" (and at most one word:
# "my resting heart rate", "my fasting blood sugar") right before the measure.
ASK_MY_EN = re.compile(r"(?:^|[,.;!?]\s*|(?<![a-z])(?:so|and|also|hey|ok|okay|now|then)\s+)(?:how(?:'s|s)?|what(?:'s|s)?|is|are|"
                       r"has|have|was|were|did|does(?= my )|show me|tell me|give me|let me see|check|(?:can|could|would) you (?:\w+ ){0,2}"
                       r"(?:show|tell|check|give|pull up|summari[sz]e|look at|see)(?: me)?)(?![a-z])" + _CLAUSE + r"{0,40}?"
                       r"(?<![a-z])my\s+(?:[a-z]+\s+)?$")
# ...or "my <measure> readings/trend/log..." asked of ("my blood sugar readings this week, are they too high?").
MY_RECORDS_EN = re.compile(r"\s*(?:readings?|numbers?|records?|log|logs|trend|history|stats|data|levels?|results?|average|"
                           r"chart|graph)(?![a-z])")
# The user as the subject of the measure's verb: "am I losing weight", "how much did I sleep", "do I weigh".
I_DID_EN = re.compile(r"(?<![a-z])(?:am i|have i(?: been)?|did i|do i|how (?:much|many \w+|long|well) (?:did|have|do) i)\s+"
                      r"(?:\w+\s+)?(?:losing|gaining|putting on|getting (?:heavier|lighter|fatter|thinner|bigger|smaller)|lost|"
                      r"gained|put on|weigh|sleep|slept|sleeping|walk|walked|walking|drink|drank|drunk|drinking|take|taken|"
                      r"took|miss|missed)(?![a-z])")
# Medicine reminders: when one takes it, the next dose, whether it was taken.
_MEDS_EN = r"(?:\w+\s+)?(?:medicines?|medications?|meds|pills?|tablets?|doses?|insulin|jabs?|shots?)(?![a-z])"
MEDICINE_EN = re.compile(r"(?<![a-z])(?:(?:what time|when)(?:'s| is| are| do| does| should)?\s+(?:i\s+(?:need to |have to )?"
                         r"(?:take|have)\s+)?my\s+(?:next\s+)?" + _MEDS_EN + r"|my next (?:dose|pill|tablet|jab|shot|injection)|"
                         r"(?:did|have) i (?:take|taken|have|had|miss|missed)\s+(?:my\s+|all\s+)?" + _MEDS_EN +
                         r"|my (?:medicine|medication|meds|pill|tablet) (?:reminders?|times?|schedule))")
# Chinese: the measure, then in its clause what is asked of it (怎么样, 高不高, 正常吗, 有变化吗, 多少, 记录...).
STATE_AFTER_ZH = re.compile(_CLAUSE + r"{0,10}?(?:怎么样|怎样|如何|咋样|情况|高不高|低不低|正不正常|正常吗|正常不|正常么|算高|算低|"
                            r"算不算|高吗|低吗|偏高吗|偏低吗|高了吗|低了吗|变化|趋势|记录|数据|控制得|控制住了?[吗没]|多少|稳不稳|"
                            r"稳定吗|稳定不|降|升|涨|掉|变|回落|增加|减少|好转|好点了?[吗没]|好些了?[吗没]|够不够|够吗|"
                            r"够了吗|汇总|总结|统计)")
# ...or a request to see it before it (帮我看看我的血压记录, 查一下我这周的步数).
LOOK_ZH = re.compile(r"(?<![要该得去再])(?:看看|看一下|查查|查一下|说说|汇总|总结|统计|分析一下)" + _CLAUSE + r"{0,12}$")
# ...or the measure's own verbs said of oneself (我最近胖了吗, 我现在多重, 我昨晚睡了多久, 我今天走了多少步).
I_DID_ZH = re.compile(r"我" + _CLAUSE + r"{0,8}?(?:(?:胖|瘦|重|轻)了(?:吗|么|没有?|多少)|(?:是不是|有没有)变?(?:胖|瘦|重|轻)|(?:胖|瘦)没(?:胖|瘦)|多重|几斤|多少斤|"
                      r"多少公斤|睡了多久|睡了几个?小时|睡了多少|走了多少步|走了几步|每天走多少步|喝了多少水|水喝够了)")
MEDICINE_ZH = re.compile(r"(?:几点|什么时候|啥时候)" + _CLAUSE + r"{0,4}(?:吃药|服药|吃.{0,6}药)|药" + _CLAUSE +
                         r"{0,4}(?:吃了[吗没]|吃过了[吗没]?|吃没吃|有没有吃|服了[吗没])|吃药了[吗没]|(?:吃药|服药|用药)(?:提醒|时间)" +
                         _CLAUSE + r"{0,6}(?:几点|什么时候|啥时候|时间)|下一次吃药|下次吃药")
# Looking after a reminder is the reminders' page, not a question of one's records ("move my medication
# reminder to 10pm", 帮我设个吃药提醒), nor is exporting them.
MANAGE = re.compile(r"(?<![a-z])(?:set|setting|add|create|move|change|cancel|delete|remove|turn off|stop|snooze|export|"
                    r"download|remind me)(?![a-z])|设|改|调到|取消|删|关掉|加个|新建|导出|下载")

# A request to see them, or a question (for "my <measure> readings ..." with no question word first).
ASKS = re.compile(r"[?？]|(?<![a-z])(?:tell me|show me|give me)(?![a-z])")

# A Chinese question, or a request (a statement "医生说我这个月血压控制得特别好" asks nothing).
ASKS_ZH = re.compile(r"[?？]|[吗呢么嘛]|[不没]\W*$|怎么样|怎样|如何|咋样|多少|多重|多久|几|([\u4e00-\u9fff])[不没]\1|有没有|是不是|没有?\W*$|"
                     r"看看|看一下|查|说说|汇总|总结|统计|分析")

# The general questions that look alike: how to change it, what it should be, why, whether it is
# safe, what is normal (多少算高, "what should my sugar be"), what to eat.
HOW_TO = re.compile(r"(?<![a-z])(?:how (?:do|can|could|should|would|might) (?:i|we|you|one)|how to|ways? to|tips?|advice|"
                    r"what (?:should|can|could|do) (?:i|we|you) (?:eat|drink|do|avoid|take|change|cook)|what (?:foods?|to eat|helps?)|"
                    r"how (?:often|soon|long|much|many)[a-z ]{0,16} (?:should|do you|does one|is it|do i (?:really |actually )?need)|"
                    r"why|what causes?|what could|should (?:be|i aim)|should my|supposed to be|is it safe|is it ok to|"
                    r"can i (?:take|eat|drink|still)|safe to|what is a|what's a|what are normal|normal range|for my age|"
                    r"affected|because of|caused by)(?![a-z])|"
                    r"怎么(?:降|减|控制|调|治|办|测|量|才|样才|做|吃)|如何(?:降|减|控制|调|治|测|才)|怎样(?:降|减|才)|吃什么|喝什么|"
                    r"能不能吃|能吃|可以吃|要不要吃|注意什么|有什么办法|什么办法|什么原因|为什么|为啥|多少算|多少才|多少正常|才算|"
                    r"应该是多少|合适|最好|比较好|要吃一辈子|会不会|影响|从哪|是不是可以|可不可以")
# Something done to the measure, named before it: a cause or a means, not a question of its values
# ("does coffee raise my blood pressure", "lower my sugar").
ACTS_ON = re.compile(r"(?<![a-z])(?:raise|raises|raising|lower|lowers|lowering|reduce|reduces|affect|affects|increase|"
                     r"increases|spike|spikes|help|helps|bring|get|keep|manage|control|improve|cause|causes|make|makes|"
                     r"check|measure|test|monitor)\s+(?:\w+\s+)?my\s+(?:[a-z]+\s+)?$")
# A reading told in the message ("my BP is 150/95", 我血糖 7.8 算高吗, 三个月胖了八斤): the companion's note on a
# reading answers, and a told change is a general question of what to do about it.
READING = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d)?\s*(?:[/／]\s*\d{2,3}|mmol|mg|kg|kilos?|公斤|斤|lbs?|pounds|度|℃|°|bpm|次|"
                     r"(?=\s*(?:算|是不是|正常|is that|high|ok|normal|bad|,|，|\?|？|$)))|[一二两三四五六七八九十]+\s*(?:斤|公斤)")

WORD_NUMBERS = {"one": 1, "a": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "ten": 10, "fourteen": 14,
                "thirty": 30, "couple of": 2, "few": 3, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
                "七": 7, "八": 8, "九": 9, "十": 10}
DEFAULT_DAYS = 7


class Asked(NamedTuple):
    kind: str  # a record type, or "medicine" (the medicine reminders)
    days: int  # the period asked: the last N days, today included
    taken: bool  # asks whether a medicine was taken ("did I take my pills today?")


def period_days(text: str) -> int:
    """The period a question asks about, in days ending today: "today" 1, "this week"/这周 7,
    "the last two weeks"/两周/半个月 14, "this month"/这个月 30, "past 10 days"/10天; else 7."""
    m = re.search(r"(?<![a-z])(?:last|past|these|this|over the|in the|previous)\s+(\d+|one|two|three|four|five|six|seven|ten|"
                  r"fourteen|thirty|couple of|few)\s+(days?|weeks?|months?)(?![a-z])", text)
    if m:
        n = int(m.group(1)) if m.group(1).isdigit() else WORD_NUMBERS[m.group(1)]
        return n * {"d": 1, "w": 7, "m": 30}[m.group(2)[0]]
    m = re.search(r"([一二两三四五六七八九十]|\d+)\s*(?:个)?(天|周|星期|礼拜|月)", text)
    if m:
        n = int(m.group(1)) if m.group(1).isdigit() else WORD_NUMBERS[m.group(1)]
        return n * {"天": 1, "周": 7, "星期": 7, "礼拜": 7, "月": 30}[m.group(2)]
    for days, pattern in ((1, r"(?<![a-z])today|今天|今日"), (2, r"(?<![a-z])yesterday|昨天|这两天"),
                          (14, r"fortnight|半个月|上周|上个星期|last week"),
                          (30, r"(?<![a-z])(?:this|last|past) month|这个月|本月|上个月|一个月"),
                          (365, r"(?<![a-z])(?:this|last|past) year|今年|一年"),
                          (7, r"(?<![a-z])(?:this|past) week|这周|本周|这星期|这个星期|这礼拜|一周")):
        if re.search(pattern, text):
            return days
    return DEFAULT_DAYS


# A follow-up naming another measure after an answer from the records: "那血糖呢？", "and my sugar?",
# "what about my weight", "体重呢" (short, and nothing else asked).
FOLLOW_UP = re.compile(r"^(?:那|还有|那么|and|what about|how about|also)?\s*(?:my\s+|我的?)?(?P<rest>" + _CLAUSE +
                       r"{1,40}?)\s*(?:呢|怎么样|如何|咋样|then)?\s*[?？。.!！]*$")


FOLLOW_UP_EN = {"blood_glucose": "|sugars?", "blood_pressure": "|pressure"}  # ("my" was read before them)


def asked_of_records(text: str, after_records: bool = False) -> Asked | None:
    """What of the user's own records ``text`` (normalized: lower case) asks about, or None for
    any other message (a general question, a reading told, someone else's numbers).
    ``after_records``: the session's last reply answered from the records, so a short follow-up
    that names only another measure ("那血糖呢？", "and my weight?") asks about it too."""
    if len(text) > 160:  # a question about one's numbers is short; a long message is something else
        return None
    zh = bool(re.search(r"[\u4e00-\u9fff]", text))
    if HOW_TO.search(text) or MANAGE.search(text):
        return None
    if after_records:
        m = FOLLOW_UP.match(text)
        if m and re.search(r"呢|那|还有|(?<![a-z])(?:and|what about|how about|also)(?![a-z])|^(?:my\s|我)", text):
            for kind, (words_zh, words_en) in MEASURES.items():
                if re.fullmatch(r"(?:(?:最近|这周|今天|这个月|\S*天)的?)?(?:" + (words_zh if zh else words_en + FOLLOW_UP_EN.get(kind, "")) + r")"
                                r"(?:\s*(?:readings?|levels?|numbers?))?(?:\s+(?:this|last|past)\s+\w+)?", m.group("rest")):
                    return Asked(kind, period_days(text), False)
    for kind, (words_zh, words_en) in [*MEASURES.items(), ("medicine", MEDICINE)]:
        for m in re.finditer(words_zh if zh else words_en, text):
            if kind != "medicine" and MODIFIER.match(text, m.end()):
                continue  # "my blood pressure pills", 降压药, 血压计: the medicine, or a device
            before, after = text[:m.start()], text[m.end():]
            clause = re.split(r"[，,。.；;！!？?\n]", before)[-1]
            if OTHER_PERSON.search(clause):
                continue  # someone else's: 我妈最近血糖, "my dad's blood pressure"
            if kind != "medicine" and READING.search(text):
                return None  # a reading told: the companion's note on that reading answers
            if kind == "medicine":
                asked = (MEDICINE_ZH if zh else MEDICINE_EN).search(text) and (not zh or "我" in text or
                                                                              re.search(PERIOD_ZH, text))
            elif zh:
                mine = "我" in clause.replace("我们", "") or re.search(PERIOD_ZH, clause + after[:8])
                # (a measure asked as a number, 睡几个小时, 走多少步, 多重, is its own question)
                asked = mine and (STATE_AFTER_ZH.match(after) or LOOK_ZH.search(clause) or I_DID_ZH.search(text)
                                  or re.search(r"几|多少|多久|多重", m.group()))
            else:
                asked = (ASK_MY_EN.search(before) and not ACTS_ON.search(before)) or I_DID_EN.search(text) or (
                    re.search(r"(?<![a-z])my\s+(?:[a-z]+\s+)?$", before) and MY_RECORDS_EN.match(after) and ASKS.search(text))
            rest = re.split(r"[，,。.；;！!？?\n]", after)[0]
            if zh and asked and not ASKS_ZH.search(clause + m.group() + after[:len(rest) + 1]):
                asked = None  # told, not asked, in the measure's clause: 医生说我的血糖控制得很好, 最近心跳老是突然变快
            if asked:
                taken = kind == "medicine" and bool(re.search(r"吃了[吗没]|吃过了|吃没吃|有没有吃|服了[吗没]|吃药了[吗没]|"
                                                              r"(?<![a-z])(?:did i|have i)(?![a-z])", text))
                return Asked(kind, period_days(text), taken)
    return None
