"""plugins/_textmodel.py: the small classifier the safety plugin and the emotion tagger share."""

import json
import shutil

import pytest

import wellmate

wellmate.builtin_plugins_package()
from wellmate_plugins._textmodel import TextModel, features, prepare, read_rows, split_of, train  # noqa: E402

ROWS = [
    ("I want to end my life", "risk"), ("thinking about ending it all tonight", "risk"),
    ("i'm going to kill myself", "risk"), ("no reason to keep living", "risk"),
    ("我不想活了", "risk"), ("真想结束这一切", "risk"), ("活着没意思，想死", "risk"),
    ("this commute is killing me", "none"), ("kill the process and restart it", "none"),
    ("what should I eat for dinner", "none"), ("今天天气不错", "none"), ("笑死我了哈哈", "none"),
    ("my knee hurts after running", "none"), ("how much water should I drink", "none"),
]


def test_features_see_characters_words_pairs_and_emoji():
    found = features("ＴＩＲＥＤ of it 😭，累死了")
    assert "w:tired" in found and "b:of it" in found and "c:tire" in found  # NFKC and lower case
    assert "o:😭" in found and "z:累死" in found and "z:累死了" in found
    assert prepare("sooooo   goood！！！") == "soo good!!"


def test_feature_families_are_added_on_request_and_a_model_reads_text_with_its_own(tmp_path):
    plain = features("i want to die 真的不想活")
    more = features("i want to die 真的不想活", ["zh4", "skip"])
    assert not any(f.startswith("s:") for f in plain)
    assert "s:want die" in more and "s:want die" not in plain  # a pair with one word between
    assert "z:的不想活" in more and "z:的不想活" not in plain  # Chinese 4-grams
    assert set(plain) < set(more)
    model = train(ROWS, families=["skip"])
    assert model.meta["features"] == ["skip"]
    model.save(tmp_path / "m.json")
    loaded = TextModel.load(tmp_path / "m.json")
    assert loaded.families == ("skip",)
    assert abs(loaded.scores("I want to end my life")["risk"] - model.scores("I want to end my life")["risk"]) < 0.01
    assert "features" not in train(ROWS).meta and train(ROWS).families == ()


def test_learns_from_characters_it_never_saw_as_words():
    model = train(ROWS, epochs=20)
    # Inflections and spellings that are in no row: the n-grams they share with rows carry them.
    assert model.predict("ended my life")[0] == "risk"
    assert model.predict("我真的不想活下去了")[0] == "risk"
    assert model.predict("kill the server process")[0] == "none"
    assert abs(sum(model.scores("hello").values()) - 1) < 1e-9


def test_the_mean_of_runs_is_the_mean_of_their_logits_and_a_weighed_row_counts_more():
    import math

    def logits(model, text):
        probabilities = model.scores(text)
        return [math.log(probabilities[label]) for label in model.labels]

    one, two, both = train(ROWS, seed=5), train(ROWS, seed=6), train(ROWS, seed=5, runs=2)
    assert both.meta["runs"] == 2
    for text in ("this commute is killing me", "我不想活了", "hello"):
        # log-probabilities differ from logits by a constant per text: compare differences between labels
        a, b, mean = logits(one, text), logits(two, text), logits(both, text)
        assert abs((mean[1] - mean[0]) - ((a[1] - a[0]) + (b[1] - b[0])) / 2) < 1e-3, text
    # A row weighed more pulls the model further its way than the same row weighed 1
    plain = train(ROWS, epochs=20)
    weighed = train([(text, label, [], 4.0 if text == "this commute is killing me" else 1.0) for text, label in ROWS],
                    epochs=20)
    assert weighed.scores("this commute is killing me")["none"] > plain.scores("this commute is killing me")["none"]


def test_training_is_deterministic_and_saving_keeps_the_predictions(tmp_path):
    a, b = train(ROWS, seed=3), train(ROWS, seed=3)
    assert (a.starts, a.weights) == (b.starts, b.weights)
    size = a.save(tmp_path / "m.json", meta={"trained_on": "ROWS"})
    assert size == (tmp_path / "m.json").stat().st_size
    loaded = TextModel.load(tmp_path / "m.json")
    assert loaded.meta["trained_on"] == "ROWS" and loaded.labels == ["none", "risk"]
    for text, _ in ROWS + [("something else entirely", "")]:
        assert loaded.predict(text)[0] == a.predict(text)[0]
        assert abs(loaded.scores(text)["risk"] - a.scores(text)["risk"]) < 0.01


@pytest.mark.parametrize("content, says", [
    (None, "no such file"), ("{not json", "cannot read"), ('{"format": "other"}', "not a wellmate"),
    (json.dumps({"format": "wellmate-textmodel/1", "labels": ["a", "b"], "bias": [0], "scale": 1000,
                 "weights": {}}), "wrong shape"),
    (json.dumps({"format": "wellmate-textmodel/1", "labels": ["a", "b"], "bias": [0, 0], "scale": 1000,
                 "buckets": 8, "weights": {"buckets": "AQAAAA==", "values": "AQA="}}), "1 weights for 1 buckets of 2"),
    (json.dumps({"format": "wellmate-textmodel/1", "labels": ["a", "b"], "bias": [0, 0], "scale": 1000,
                 "buckets": 8, "weights": {"buckets": "not base64!", "values": ""}}), "cannot be read"),
    # Wrong types where numbers, strings or a mapping belong: still a ValueError, never a crash.
    (json.dumps({"format": "wellmate-textmodel/1", "labels": ["a", "b"], "bias": [None, 0], "scale": 1000,
                 "buckets": 8, "weights": {"buckets": "", "values": ""}}), "wrong shape"),
    (json.dumps({"format": "wellmate-textmodel/1", "labels": ["a", "b"], "bias": [0, 0], "scale": 1000,
                 "buckets": 8, "meta": [1, 2], "weights": {"buckets": "", "values": ""}}), "wrong shape"),
    (json.dumps({"format": "wellmate-textmodel/1", "labels": ["a", "b"], "bias": [0, 0], "scale": 1000,
                 "buckets": 8, "weights": {"buckets": "", "values": 5}}), "cannot be read"),
])
def test_a_bad_model_file_is_a_clear_value_error(tmp_path, content, says):
    path = tmp_path / "m.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=says):
        TextModel.load(path)


def test_rows_keep_their_split_and_malformed_lines_are_named(tmp_path):
    good = tmp_path / "a.tsv"
    good.write_text("# comment\nlabel\tkind\ttext\nrisk\tdirect\t我不想活了\n\nnone\t\t hello \n", encoding="utf-8")
    rows = read_rows([good])
    assert [(r["label"], r["text"], r["split"]) for r in rows] == [
        ("risk", "我不想活了", split_of("我不想活了")), ("none", "hello", split_of("hello"))]
    held = sum(split_of(f"sentence {i}") == "held" for i in range(4000))
    assert 350 < held < 650  # about one in eight
    bad = tmp_path / "b.tsv"
    bad.write_text("label\ttext\nrisk\n", encoding="utf-8")
    with pytest.raises(ValueError, match="b.tsv:2"):
        read_rows([bad])


def test_features_the_caller_found_are_learned_and_read_with_the_text(tmp_path):
    # The same words, told apart only by what the caller found in them (the safety plugin's
    # concepts): without the extra feature the model cannot separate the rows.
    rows = [(f"message number {i}", "risk" if i % 2 else "none", ["q:flag"] if i % 2 else []) for i in range(40)]
    model = train(rows, epochs=20)
    assert model.predict("message number 7", ["q:flag"])[0] == "risk"
    assert model.predict("message number 7")[0] == "none"
    assert model.scores("message number 7", ["q:flag"])["risk"] > model.scores("message number 7")["risk"] + 0.3
    model.save(tmp_path / "m.json")
    loaded = TextModel.load(tmp_path / "m.json")
    assert loaded.predict("message number 8", ["q:flag"])[0] == "risk"
    # pairs and triples can be mixed: a pair has no extra features
    mixed, pairs = train(ROWS[:4] + [(t, y, []) for t, y in ROWS[4:]], seed=1), train(ROWS, seed=1)
    assert (mixed.starts, mixed.weights) == (pairs.starts, pairs.weights)


def test_an_unchanged_file_is_decoded_once_per_process_and_a_changed_one_again(tmp_path):
    """Every Wellmate the tests build loads the same two models: they share one decoding while the
    file is unchanged; a file written since (train-crisis) is read again, a broken one refused."""
    path = tmp_path / "m.json"
    train(ROWS, seed=3).save(path)
    first = TextModel.load(path)
    assert TextModel.load(path) is first
    train(ROWS, seed=4, epochs=2).save(path, meta={"trained_on": "again"})
    again = TextModel.load(path)
    assert again is not first and again.meta["trained_on"] == "again"
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError, match="not a"):
        TextModel.load(path)
    train(ROWS, seed=3, epochs=2).save(tmp_path / "other.json")
    for n in range(TextModel.SHARED_MAX + 2):  # other files: the oldest are dropped, never more kept
        shutil.copy(tmp_path / "other.json", tmp_path / f"{n}.json")
        TextModel.load(tmp_path / f"{n}.json")
    assert len(TextModel._shared) <= TextModel.SHARED_MAX


@pytest.mark.parametrize("name", ["offline_topics", "emotion", "crisis"])
def test_a_shipped_models_scores_are_every_features_weights_added_up_label_by_label(name):
    """Scoring adds up only the rows of the buckets that hold weights, as columns: the result must
    be the plain sum over every feature, label by label, to the last bit (the thresholds the
    safety plugin and the taggers compare against were chosen on it)."""
    import base64
    import math
    import zlib
    from array import array

    data = json.loads((wellmate.HERE / "models" / f"{name}.json").read_text(encoding="utf-8"))
    width, size = len(data["labels"]), data["buckets"]
    gaps, values = array("I"), array("h")
    gaps.frombytes(base64.b64decode(data["weights"]["buckets"]))
    values.frombytes(base64.b64decode(data["weights"]["values"]))
    dense, b = array("f", bytes(4 * width * size)), -1
    for n, gap in enumerate(gaps):
        b += gap
        for i in range(width):
            dense[b * width + i] = values[n * width + i] / data["scale"]

    def expected(feats):
        buckets = [zlib.crc32(f.encode("utf-8")) % size for f in feats]
        value = 1 / math.sqrt(len(buckets))
        logits = [bias + value * sum(dense[b * width + i] for b in buckets) for i, bias in enumerate(data["bias"])]
        exps = [math.exp(x - max(logits)) for x in logits]
        return dict(zip(data["labels"], [e / sum(exps) for e in exps]))

    model = TextModel.load(wellmate.HERE / "models" / f"{name}.json")
    rows = read_rows(sorted((wellmate.HERE / "models" / "training").glob("*.tsv")))[::7]
    texts = [row["text"] for row in rows] + ["", "?", "😭😭😭", "zzzz qqqq xxxx", "累" * 3000]
    for text in texts:
        extra = ["q:flag"] if name == "crisis" else []
        assert model.scores(text, extra) == expected(features(text, model.families) + extra), text


def test_the_weight_rows_kept_for_reuse_never_pass_their_bound_and_scores_do_not_depend_on_them():
    """A model keeps the weight rows of features it has read (ROWS_MAX of them, so a server fed endless new text
    stays at a fixed size): the bound holds inside one long text too, and a row not kept scores the same."""
    model = TextModel.load(wellmate.HERE / "models" / "emotion.json")
    model.ROWS_MAX = 50
    from itertools import product
    text = " ".join("".join(letters) for letters in product("qxzjv", repeat=4))  # ~2,000 features no other text has
    first = model.scores(text)
    assert len(model._rows) == 50
    assert model.scores(text) == first and len(model._rows) == 50


def test_shuffle_by_text_does_not_depend_on_the_rows_order_and_a_new_row_keeps_the_others_order():
    """shuffle="text" (the topic model's, session 19): each epoch orders rows by a hash of their own text, so the
    same rows in another order train the same weights; "seed" shuffles positions, so the order matters."""
    same = train(ROWS, epochs=3, seed=0, shuffle="text"), train(ROWS[::-1], epochs=3, seed=0, shuffle="text")
    assert list(same[0].weights) == list(same[1].weights) and same[0].bias == same[1].bias
    moved = train(ROWS, epochs=3, seed=0), train(ROWS[::-1], epochs=3, seed=0)
    assert list(moved[0].weights) != list(moved[1].weights)
    for text in ("thinking about ending it all tonight", "what should I eat for dinner"):
        assert same[0].predict(text)[0] == same[1].predict(text)[0]
