"""The labelled sentences in tests/data, read by the tests and by bench/emotion."""

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
EMOTION_LABELLED = DATA / "emotion_labelled.tsv"  # split, label, kind, text
CRISIS_CASES = DATA / "crisis_cases.tsv"  # expect, kind, text
OFFLINE_QUESTIONS = DATA / "offline_questions.tsv"  # split, topic, lang, text, follows


def read_tsv(path: Path) -> list[dict]:
    """The rows of a tab-separated file as dicts keyed by its header line; blank lines and
    lines starting with # are skipped."""
    rows, header = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if header is None:
            header = cells
        else:
            rows.append(dict(zip(header, cells)))
    return rows
