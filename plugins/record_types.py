"""The built-in health record types: weight, height, steps, sleep, heart rate, blood pressure,
blood glucose, water, mood and temperature.

Each is a spec in the form config.yaml's ``records.types`` uses for custom types, offered through
the same ``register_record_types`` hook a user's plugin would implement: the records plugin
cannot tell a built-in type from anyone else's. Disable this plugin to keep only your own.

Spec keys (plugins/records.py checks them):
    title        shown to users and in the agents' health summary
    title_en     the name in English messages (an error's "outside the plausible range for weight");
                 default: the title if it is Latin, else the type's name with spaces for '_'
    unit         the unit records are stored in
    min, max     the plausible range, in ``unit``; outside it a record is refused with a 400
    decimals     digits kept after the point (0: whole numbers)
    units        other units accepted: name -> factor, or [factor, offset]; stored = given * factor + offset
    daily        how one day's records combine: "mean" (a measurement) or "sum" (an amount)
    noticeable   the smallest change over a period worth calling a trend, in ``unit``
    fields       (plugins only) a value made of several numbers: name -> [min, max]
    check        (plugins only) check(value) -> an error message or None, after the range checks

The ranges are wide on purpose: they catch typos (700 kg, a heart rate of 7) and wrong units
(weight in grams), not unusual people.
"""

from wellmate import hookimpl

F_TO_C = [5 / 9, -32 * 5 / 9]  # °C = (°F - 32) × 5/9

TYPES = {
    "weight": {
        "title": "体重", "title_en": "weight", "unit": "kg", "min": 1, "max": 500, "decimals": 2, "noticeable": 0.5,
        "units": {"公斤": 1, "千克": 1, "lb": 0.45359237, "lbs": 0.45359237, "磅": 0.45359237,
                  "斤": 0.5, "g": 0.001, "克": 0.001},
    },
    "height": {
        "title": "身高", "title_en": "height", "unit": "cm", "min": 30, "max": 280, "decimals": 1, "noticeable": 1,
        "units": {"厘米": 1, "m": 100, "米": 100, "mm": 0.1, "in": 2.54, "inch": 2.54, "ft": 30.48},
    },
    "steps": {
        "title": "步数", "title_en": "steps", "unit": "steps", "min": 0, "max": 100000, "decimals": 0, "daily": "sum",
        "noticeable": 500, "units": {"step": 1, "步": 1},
    },
    "sleep": {
        "title": "睡眠", "title_en": "sleep", "unit": "h", "min": 0, "max": 24, "decimals": 2, "noticeable": 0.25,
        "units": {"hour": 1, "hours": 1, "hr": 1, "小时": 1, "min": 1 / 60, "minutes": 1 / 60, "分钟": 1 / 60},
    },
    "heart_rate": {
        "title": "心率", "title_en": "heart rate", "unit": "bpm", "min": 20, "max": 250, "decimals": 0, "noticeable": 3,
        "units": {"次/分": 1, "/min": 1},
    },
    "blood_pressure": {
        "title": "血压", "title_en": "blood pressure", "unit": "mmHg", "decimals": 0, "noticeable": 5,
        "fields": {"systolic": [50, 300], "diastolic": [20, 200]},
        "units": {"kPa": 7.50062},
        "check": lambda value: (None if value["systolic"] > value["diastolic"] else
                                "systolic (the upper number) must be above diastolic (the lower)"),
    },
    "blood_glucose": {
        "title": "血糖", "title_en": "blood glucose", "unit": "mmol/L", "min": 1, "max": 35, "decimals": 1, "noticeable": 0.3,
        # 18 is the factor clinics use (glucose is 180.16 g/mol, so 18.016 exactly).
        "units": {"mg/dL": 1 / 18},
    },
    "water": {
        "title": "饮水", "title_en": "water", "unit": "ml", "min": 0, "max": 10000, "decimals": 0, "daily": "sum",
        "noticeable": 200, "units": {"毫升": 1, "L": 1000, "升": 1000, "fl oz": 29.5735, "oz": 29.5735},
    },
    "mood": {
        "title": "心情", "title_en": "mood", "unit": "分", "min": 1, "max": 5, "decimals": 0, "noticeable": 0.5,
        "units": {"score": 1, "/5": 1},  # 1 very low, 5 very good
    },
    "temperature": {
        "title": "体温", "title_en": "temperature", "unit": "°C", "min": 30, "max": 45, "decimals": 1, "noticeable": 0.3,
        "units": {"C": 1, "℃": 1, "°F": F_TO_C, "F": F_TO_C, "℉": F_TO_C},
    },
}


@hookimpl
def register_record_types(register):
    for name, spec in TYPES.items():
        register(name, spec)
