"""The built-in gold-reward task: the gold reward by hand, identical bytes per seed, label noise
by gap and temperature, confidence, the tokenizer, disjoint test prompts, flip noise.

Guards: data/synthetic.py."""

import json

import pytest
from transformers import AutoTokenizer

from deltapref.cli import main
from deltapref.data.synthetic import SyntheticTaskConfig, generate_task, gold_reward, label_noise_by_gap, write_task


def test_gold_reward_hand_values():
    prompt = "tell me about cat dog ?"
    # 10 words: 4 on-topic (cat, dog, horse, cat), 1 off-topic (rain), 2 positive, 1 negative
    response = "cat dog horse cat rain good great bad the a ."
    expected = 3.0 * (4 - 1) / 10 + 1.5 * (2 - 1) / 10 + 0.5 - 0.0
    assert gold_reward(prompt, response) == pytest.approx(expected)
    # length penalty, no grounding, off-topic only
    assert gold_reward(prompt, "rain snow .") == pytest.approx(3.0 * -2 / 2 - 0.15 * 8)


def test_same_seed_gives_identical_bytes(tmp_path):
    config = SyntheticTaskConfig(seed=3, n_train=50, n_test=10)
    write_task(config, tmp_path / "a")
    write_task(config, tmp_path / "b")
    for name in ("train", "test", "ranked_train", "ranked_test"):
        assert (tmp_path / "a" / f"{name}.jsonl").read_bytes() == (tmp_path / "b" / f"{name}.jsonl").read_bytes()
    other = generate_task(SyntheticTaskConfig(seed=4, n_train=50, n_test=10))
    assert other["train"] != generate_task(config)["train"]


def test_label_noise_rises_as_gold_gap_shrinks():
    rows = generate_task(SyntheticTaskConfig(seed=0, n_train=3000, n_test=1))["train"]
    table = label_noise_by_gap(rows, edges=(0.0, 0.5, 1.0, 2.0, float("inf")))
    rates = [bucket["noise_rate"] for bucket in table]
    assert all(bucket["pairs"] > 200 for bucket in table)
    assert rates == sorted(rates, reverse=True), rates
    assert rates[0] > 0.2 and rates[-1] < 0.05


def test_labels_follow_bradley_terry_temperature():
    cold = generate_task(SyntheticTaskConfig(seed=1, n_train=1500, n_test=1, temperature=0.1))["train"]
    hot = generate_task(SyntheticTaskConfig(seed=1, n_train=1500, n_test=1, temperature=2.0))["train"]
    noise = [sum(r["gold_reward_chosen"] < r["gold_reward_rejected"] for r in rows) / len(rows) for rows in (cold, hot)]
    assert noise[0] < 0.08 < 0.25 < noise[1]


def test_confidence_tracks_gap_and_ranked_lists():
    task = generate_task(SyntheticTaskConfig(seed=2, n_train=800, n_test=1, k_ranked=5))
    rows = task["train"]
    gap = lambda r: abs(r["gold_reward_chosen"] - r["gold_reward_rejected"])  # noqa: E731
    high = [gap(r) for r in rows if r["confidence"] >= 8]
    low = [gap(r) for r in rows if r["confidence"] <= 3]
    assert sum(high) / len(high) > 2 * sum(low) / len(low)
    assert all(len(r["responses"]) == len(r["scores"]) == 5 for r in task["ranked_train"])


def test_tokenizer_reloads_and_round_trips(builtin_task):
    tokenizer = AutoTokenizer.from_pretrained(str(builtin_task / "tokenizer"))
    row = json.loads((builtin_task / "train.jsonl").read_text().splitlines()[0])
    ids = tokenizer(row["chosen"], add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert row["chosen"].startswith(" ")  # the separator from the prompt (TRL joins the two with none)
    assert tokenizer.decode(ids) == row["chosen"].strip()
    assert tokenizer.eos_token_id is not None and tokenizer.pad_token_id is not None


def test_cli_synth(tmp_path, capsys):
    assert main(["data", "synth", "--output_dir", str(tmp_path), "--n_train", "30", "--n_test", "5"]) == 0
    assert "label noise by |gold reward gap|" in capsys.readouterr().out
    summary = json.loads((tmp_path / "task.json").read_text())
    assert summary["sizes"] == {"train": 30, "ranked_train": 30, "test": 5, "ranked_test": 5}
    assert main(["data", "synth", "--output_dir", str(tmp_path), "--temperature", "0"]) == 2


def test_held_out_prompts_are_disjoint_from_training_prompts_by_default():
    """By default no held-out prompt is a training prompt; ``--disjoint_test_prompts false`` keeps
    the earlier draw, in which about a third of them are training prompts word for word (the
    training split is the same draw either way)."""
    default = SyntheticTaskConfig(seed=0, n_train=1000, n_test=200)
    after, before = (
        generate_task(default),
        generate_task(SyntheticTaskConfig(**{**vars(default), "disjoint_test_prompts": False})),
    )
    train = {row["prompt"] for row in before["train"]}
    assert sum(row["prompt"] in train for row in before["test"]) > 40
    assert not any(row["prompt"] in train for row in after["test"]) and len(after["test"]) == 200
    assert after["train"] == before["train"]


def test_flip_noise_flips_a_fixed_share_whatever_the_gap():
    """``label_noise: flip`` mislabels about ``flip_rate`` of the pairs in every gap bucket (the
    Bradley-Terry labels mislabel close pairs far more often than distant ones)."""
    task = generate_task(SyntheticTaskConfig(seed=1, n_train=6000, n_test=10, label_noise="flip", flip_rate=0.2))
    buckets = [b for b in label_noise_by_gap(task["train"], edges=(0.0, 0.5, 1.5, float("inf"))) if b["pairs"] > 500]
    assert len(buckets) == 3
    assert all(abs(b["noise_rate"] - 0.2) < 0.035 for b in buckets), buckets


def test_ranked_lists_scored_by_the_pairs_noise_process():
    """``ranked_scores: labels`` with two responses per list ranks like the pairs' labels are drawn:
    Bradley-Terry's share of out-of-order lists (Gumbel-max is Plackett-Luce; its two-item case is
    the logistic label), not the near-gold Gaussian ranking's."""

    def out_of_order(rows, key):
        wrong = [(gold_reward(r["prompt"], a) - gold_reward(r["prompt"], b)) * key(r) < 0 for r, a, b in rows]
        return sum(wrong) / len(wrong)

    config = dict(seed=2, n_train=6000, n_test=10, k_ranked=2, temperature=1.0)
    pairs = generate_task(SyntheticTaskConfig(**config))["train"]
    labels = out_of_order([(r, r["chosen"], r["rejected"]) for r in pairs], lambda r: 1)
    for scores, expected in (("labels", labels), ("gaussian", None)):
        ranked = generate_task(SyntheticTaskConfig(**config, ranked_scores=scores))["ranked_train"]
        rows = [(r, *r["responses"]) for r in ranked]
        share = out_of_order(rows, lambda r: r["scores"][0] - r["scores"][1])
        if expected is None:
            assert share < labels / 2  # near gold
        else:
            assert abs(share - expected) < 0.025
