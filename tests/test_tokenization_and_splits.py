"""Tokenization and splits: pair boundaries, truncation that keeps the response, chat templates,
edit distances and difficulty splits, option files, difference-model inputs, scorer batches.

Guards: data/tokenization.py, data/scorer_inputs.py, data/splits.py, scorers/trainer.py."""

import pytest
from transformers import AutoTokenizer

from deltapref.config.commands import parse_config
from deltapref.data import TokenizationConfig, encode_pair, normalized_edit_distance, split_by_difficulty
from deltapref.data.splits import edit_distance
from deltapref.data.synthetic import SyntheticTaskConfig


@pytest.fixture(scope="module")
def tokenizer(builtin_task):
    return AutoTokenizer.from_pretrained(str(builtin_task / "tokenizer"))


def test_pair_boundaries_are_exact(tokenizer):
    row = {"prompt": "tell me about cat ?", "chosen": "cat good .", "rejected": "rain ."}
    out = encode_pair(tokenizer, row, TokenizationConfig(max_length=64, max_prompt_length=32))
    assert out["prompt_ids"][0] == tokenizer.bos_token_id
    assert tokenizer.decode(out["prompt_ids"][1:]) == "tell me about cat ?"
    assert out["chosen_ids"][-1] == tokenizer.eos_token_id
    assert tokenizer.decode(out["chosen_ids"][:-1]) == "cat good ."
    assert tokenizer.decode(out["rejected_ids"][:-1]) == "rain ."


def test_truncation_keeps_the_response(tokenizer):
    row = {"prompt": "tell me about " + "cat " * 20 + "?", "chosen": "dog " * 6 + ".", "rejected": "cow ."}
    out = encode_pair(tokenizer, row, TokenizationConfig(max_length=12, max_prompt_length=4))
    assert len(out["prompt_ids"]) == 4 and tokenizer.decode(out["prompt_ids"][-1:]) == "?"
    assert len(out["chosen_ids"]) == 8  # 6 words, '.', eos: all kept
    kept_start = encode_pair(tokenizer, row, TokenizationConfig(12, 4, "keep_start"))
    assert kept_start["prompt_ids"][0] == tokenizer.bos_token_id
    long = dict(row, chosen="dog " * 30)
    out = encode_pair(tokenizer, long, TokenizationConfig(max_length=12, max_prompt_length=4))
    assert len(out["prompt_ids"]) + len(out["chosen_ids"]) == 12


def test_chat_messages_use_the_template(tokenizer):
    tokenizer = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = (
        "{% for m in messages %}<s> {{ m['content'] }} </s> {% endfor %}{% if add_generation_prompt %}<s> {% endif %}"
    )
    row = {
        "prompt": [{"role": "user", "content": "cat ?"}],
        "chosen": [{"role": "assistant", "content": "good cat"}],
        "rejected": [{"role": "assistant", "content": "bad"}],
    }
    out = encode_pair(tokenizer, row, TokenizationConfig(64, 32))
    assert tokenizer.decode(out["prompt_ids"]) == "<s> cat ? </s> <s>"
    assert tokenizer.decode(out["chosen_ids"]) == "good cat </s>"


def test_edit_distance_hand_values():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], ["a", "b"]) == 2
    assert normalized_edit_distance("a b c".split(), "a x c d".split()) == pytest.approx(2 / 4)
    assert normalized_edit_distance([], []) == 0.0


def test_split_by_difficulty_counts():
    rows = [
        {"prompt": "p", "chosen": "a b c d", "rejected": r, "confidence": c}
        for r, c in [("a b c d e", 1), ("a b c x", 2), ("w x y z", 9), ("q r s t u v", 8), ("a b c d f", 5)]
    ]
    groups, report = split_by_difficulty(rows)
    assert report["confidence_median"] == 5 and report["edit_distance_median"] == pytest.approx(0.25)
    assert [r["confidence"] for r in groups["easy"]] == [9, 8]
    assert [r["confidence"] for r in groups["hard"]] == [1]
    assert report["counts"] == {"easy": 2, "hard": 1, "mixed": 2}
    with pytest.raises(ValueError, match="have no numeric 'confidence'"):
        split_by_difficulty([{"prompt": "p", "chosen": "a", "rejected": "b"}])


def test_yaml_config_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 7\nn_train: 11\n")
    (config,) = parse_config([SyntheticTaskConfig], ["--config", str(path), "--n_train", "5"], "t", "")
    assert (config.seed, config.n_train) == (7, 5)
    path.write_text("sede: 7\n")
    with pytest.raises(ValueError, match="unknown option.*sede"):
        parse_config([SyntheticTaskConfig], ["--config", str(path)], "t", "")


def test_cli_split_writes_groups(builtin_task, tmp_path, capsys):
    import json

    from deltapref.cli import main

    assert main(["data", "split", "--input", str(builtin_task / "train.jsonl"), "--output_dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "split_report.json").read_text())
    counts = report["counts"]
    assert sum(counts.values()) == 400 and counts["easy"] > 0 and counts["hard"] > 0
    assert len((tmp_path / "easy.jsonl").read_text().splitlines()) == counts["easy"]


def test_difference_ids_truncation_keeps_labels_query_end_and_response_starts(builtin_task):
    from deltapref.data.scorer_inputs import FIRST, QUERY, SECOND, difference_ids

    tokenizer = AutoTokenizer.from_pretrained(str(builtin_task / "tokenizer"))
    query = " ".join(["cat"] * 30 + ["tell", "me", "about", "dog"])
    first, second = " ".join(["good"] * 40 + ["bad"]), " ".join(["rain"] * 40 + ["snow"])
    ids, first_start, second_start = difference_ids(tokenizer, query, first, second, TokenizationConfig(48, 16))
    assert len(ids) <= 48 and ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    words = tokenizer.decode(ids[1:-1]).split()
    labels = [
        tokenizer.decode(tokenizer(t, add_special_tokens=False)["input_ids"]).split() for t in (QUERY, FIRST, SECOND)
    ]
    start_first = words.index(labels[1][0])
    start_second = len(words) - words[::-1].index(labels[2][0]) - 1
    kept_query = words[len(labels[0]) : start_first]
    assert kept_query[-4:] == ["tell", "me", "about", "dog"]  # the query keeps its end
    kept_first = words[start_first + len(labels[1]) : start_second - 1]
    kept_second = words[start_second + len(labels[2]) :]
    assert set(kept_first) == {"good"} and set(kept_second) == {"rain"}  # responses keep their start
    assert abs(len(kept_first) - len(kept_second)) <= 1  # the budget is split evenly
    second_label = tokenizer(SECOND, add_special_tokens=False)["input_ids"]
    assert ids[second_start : second_start + len(second_label)] == second_label  # segment 1 starts at its label
    first_label = tokenizer(FIRST, add_special_tokens=False)["input_ids"]
    assert ids[first_start : first_start + len(first_label)] == first_label  # so does the first part


def test_difference_ids_untruncated_holds_everything(builtin_task):
    from deltapref.data.scorer_inputs import difference_ids

    tokenizer = AutoTokenizer.from_pretrained(str(builtin_task / "tokenizer"))
    ids, _, _ = difference_ids(tokenizer, "tell me about cat ?", "cat is good .", "rain .", TokenizationConfig(128, 32))
    assert tokenizer.decode(ids, skip_special_tokens=True).split() == (
        "Query: tell me about cat ? Response 1: cat is good . Response 2: rain .".split()
    )


def test_scorer_collator_layouts():
    from deltapref.objectives import SCORER_OBJECTIVES, ScorerLossOptions
    from deltapref.scorers.trainer import ScorerCollator

    rows = [
        {"chosen_ids": [5, 6, 7], "rejected_ids": [5, 8], "chosen_start": 1, "margin": 0.5},
        {"chosen_ids": [9, 10], "rejected_ids": [9, 11, 12, 13], "chosen_start": 1, "margin": 1.0},
    ]
    batch = ScorerCollator(0, SCORER_OBJECTIVES["oracle"], ScorerLossOptions())(rows)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0], [9, 10, 0, 0], [5, 8, 0, 0], [9, 11, 12, 13]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]]
    # the chosen responses' tokens only (rejected rows: none), one row per sequence so groups split it
    assert batch["response_mask"].tolist() == [[0, 1, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert batch["margin"].tolist() == [0.5, 1.0]
    assert "response_mask" not in ScorerCollator(0, SCORER_OBJECTIVES["reward"], ScorerLossOptions())(rows)


@pytest.mark.parametrize("kind", ["reward", "difference"])
def test_scorer_rows_carry_their_longest_sequence_for_length_grouping(tokenizer, kind):
    import datasets

    from deltapref.objectives import SCORER_OBJECTIVES
    from deltapref.scorers.trainer import prepare_scorer_dataset

    rows = datasets.Dataset.from_list(
        [{"prompt": "tell me about cat ?", "chosen": "cat is good .", "rejected": "rain ."}]
    )
    out = prepare_scorer_dataset(rows, tokenizer, SCORER_OBJECTIVES[kind], TokenizationConfig(128, 32))[0]
    sequences = [v for k, v in out.items() if k.endswith("_ids")]
    assert len(sequences) == (2 if kind == "reward" else 3)
    assert out["length"] == max(map(len, sequences))
