"""bench/emotion_folds' split: a writer left out is left out entirely (its file's train and held
rows, and the same sentence copied into a training file), and nothing else is."""

from pathlib import Path

import wellmate

ROOT = Path(__file__).resolve().parent.parent


def tagger_model():
    wellmate.builtin_plugins_package()
    import importlib

    return importlib.import_module("wellmate_plugins.tagger_model")


def write(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("label\tkind\ttext\n" + "".join(f"{label}\tplain\t{text}\n" for label, text in rows),
                    encoding="utf-8")
    return path


def test_leaving_a_writer_out_drops_its_rows_of_both_splits_and_copies_elsewhere(tmp_path):
    tm = tagger_model()
    from wellmate_plugins._textmodel import read_rows

    # enough rows that the hash split puts some of the left-out set in each half
    writer = write(tmp_path / "emotion_X.tsv", [("tired", f"long shift number {i}, so tired") for i in range(40)])
    other = write(tmp_path / "emotion_Y.tsv", [("calm", f"a quiet evening number {i}") for i in range(40)])
    # a training file that copied one of the writer's sentences (spaced and cased otherwise)
    training = write(tmp_path / "emotion_en_99.tsv", [("tired", "Long  shift number 3, so TIRED"),
                                                      ("happy", "got the job, long shift number 3 or not")])
    rows = read_rows([writer, other, training])
    measured = read_rows([writer])
    assert {r["split"] for r in measured} == {"train", "held"}
    kept = tm.leave_writer_out(rows, measured)
    assert not [r for r in kept if r["file"] == "emotion_X.tsv"]
    assert [r["text"] for r in kept if r["file"] == "emotion_en_99.tsv"] == ["got the job, long shift number 3 or not"]
    assert len([r for r in kept if r["file"] == "emotion_Y.tsv"]) == 40  # the other writer untouched


def test_each_dev_set_left_out_is_a_writer_the_shipped_training_reads():
    """The sets the bench leaves out are the ones train-emotion learns (A-M since session 19): leaving A out
    must remove all of A."""
    tm = tagger_model()
    from wellmate_plugins._textmodel import read_rows

    rows = tm.training_rows(ROOT)
    files = {r["file"] for r in rows}
    assert {f"emotion_{name}.tsv" for name in "ABCDEFGHIJKLM"} <= files
    a = read_rows([ROOT / "tests" / "data" / "heldout" / "emotion_A.tsv"])
    without_a = tm.leave_writer_out(rows, a)
    assert "emotion_A.tsv" not in {r["file"] for r in without_a}
    assert len(rows) - len(without_a) >= len(a)
