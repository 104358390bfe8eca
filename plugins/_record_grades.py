"""The blood-sugar lines a period of one's own readings is graded by: the records plugin grades a report with them
(`Records.report`'s ``glucose_grade``) and the offline companion's caution on that report follows the grade and quotes
the same lines (`provider_offline.RECORD_CAUTIONS`). A library, not a plugin: one table for both since session 21
(CAUT), when the lines were numbers in the companion alone, which the records did not know.

In mmol/L (the blood_glucose record type's unit): 16.7 and over, a reading that needs a doctor today or, with great
thirst, vomiting or drowsiness, an ambulance (diabetic ketoacidosis or a hyperosmolar state); under 3.9, low blood sugar;
11.1 at any time, or 7.0 as an average, the diabetes lines (a random glucose, a fasting one)."""

from __future__ import annotations

GLUCOSE_UNIT = "mmol/L"
GLUCOSE_LINES = {"very_high": 16.7, "low": 3.9, "high": 11.1, "average": 7.0}  # ("average": the line of an average)


def glucose_grade(low: float, high: float, average: float) -> str:
    """A period's grade by its lowest, highest and average reading (mmol/L), the most urgent first: "very_high" (a
    reading at or above 16.7), "low" (one under 3.9), "high" (one at or above 11.1, or an average at or above 7.0), or
    "" (none of these)."""
    if high >= GLUCOSE_LINES["very_high"]:
        return "very_high"
    if low < GLUCOSE_LINES["low"]:
        return "low"
    return "high" if high >= GLUCOSE_LINES["high"] or average >= GLUCOSE_LINES["average"] else ""


def glucose_lines_text() -> dict:
    """The lines as a wording quotes them: very_high "16.7", low "3.9", high "11.1", average "7.0"."""
    return {key: f"{value:.1f}" for key, value in GLUCOSE_LINES.items()}
