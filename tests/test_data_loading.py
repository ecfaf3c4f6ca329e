"""Loading data: each raw shape normalized, bad lines and fields named, skipped rows counted,
round trips, the CLI's validate / convert / inspect, hub ids, the caller's random state.

Guards: data/loading.py, data/adapters.py, data/schema.py, data/tables.py, data/writing.py,
stages/data.py."""

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deltapref.cli import main
from deltapref.data import DataError, load_preferences, save_dataset


def test_hh_splits_at_last_assistant_turn(fixtures):
    ds, report = load_preferences(str(fixtures / "hh.jsonl"))
    assert report.kept == 2 and report.skipped == 0
    row = ds[0]
    assert row["prompt"].endswith("\n\nHuman: And then?\n\nAssistant:")
    assert row["chosen"] == " Knead it, let it rise, and bake at 220C."
    assert row["rejected"] == " I don't know."
    assert ds[1]["prompt"] == "\n\nHuman: Is it safe to swim after eating?\n\nAssistant:"


def test_rm_static_passes_through(fixtures):
    ds, _ = load_preferences(str(fixtures / "rm_static.jsonl"), format="rm-static")
    assert ds.to_list()[1] == {"prompt": "\n\nHuman: What is 2+2?\n\nAssistant:", "chosen": " 4.", "rejected": " 5."}


def test_tldr_uses_choice_and_confidence(fixtures):
    ds, _ = load_preferences(str(fixtures / "tldr.jsonl"))
    first, second = ds.to_list()
    assert first["chosen"] == " New cat, jealous dog, what do?"
    assert first["rejected"] == " My dog hates my new cat."
    assert first["confidence"] == 7 and first["id"] == "t3_1"
    assert first["prompt"].startswith("SUBREDDIT: r/pets\nTITLE: Pet trouble\nPOST: I adopted")
    assert first["prompt"].endswith("TL;DR:")
    assert second["chosen"] == " Failed test twice, how to stay calm?" and second["confidence"] == 3


def test_ultrafeedback_becomes_messages_with_scores(fixtures):
    ds, _ = load_preferences(str(fixtures / "ultrafeedback.json"))
    row = ds[0]
    assert row["prompt"] == [{"role": "user", "content": "Write a haiku about rain."}]
    assert row["chosen"] == [{"role": "assistant", "content": "Soft rain on the roof / ..."}]
    assert row["rejected"] == [{"role": "assistant", "content": "Rain is wet."}]
    assert (row["chosen_score"], row["rejected_score"], row["id"]) == (8.5, 3.0, "p1")


def test_ranked_lists(fixtures):
    ds, _ = load_preferences(str(fixtures / "ranked.jsonl"))
    assert ds[0]["scores"] == [0.5, -1.2, 1.1] and len(ds[0]["responses"]) == 3


def test_broken_line_is_named(fixtures):
    with pytest.raises(DataError) as error:
        load_preferences(str(fixtures / "broken.jsonl"))
    assert error.value.row == 7 and error.value.field == "rejected"
    assert "broken.jsonl" in str(error.value) and "row 7" in str(error.value)


def test_skipping_counts_and_reports(fixtures):
    ds, report = load_preferences(str(fixtures / "broken.jsonl"), skip_bad_rows=True)
    assert len(ds) == 8 and report.kept == 8 and report.skipped == 2
    assert report.reasons == {"rejected: is missing": 1, "rejected: is identical to 'chosen'": 1}
    assert "skipped 2" in report.summary()


@pytest.mark.parametrize(
    "row, field, words",
    [
        ({"prompt": "p", "chosen": "a", "rejected": ""}, "rejected", "empty"),
        ({"prompt": "p", "chosen": 3, "rejected": "b"}, "chosen", "string or a list"),
        ({"prompt": "p", "chosen": "a", "rejected": "b", "confidence": float("nan")}, "confidence", "finite"),
        ({"prompt": "p", "chosen": [{"role": "bot", "content": "x"}], "rejected": "b"}, "chosen", "unknown role"),
    ],
)
def test_bad_fields_are_named(tmp_path, row, field, words):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"prompt": "ok", "chosen": "x", "rejected": "y"}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError) as error:
        load_preferences(str(path), format="pairwise", skip_empty=False)  # empty responses: skipped by default
    assert (error.value.row, error.value.field) == (2, field)
    assert words in str(error.value)


def test_invalid_json_and_mixed_kinds(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n{not json\n')
    with pytest.raises(DataError, match="row 2.*not valid JSON"):
        load_preferences(str(path))
    path.write_text(
        json.dumps({"prompt": "a", "chosen": "b", "rejected": "c"})
        + "\n"
        + json.dumps(
            {
                "prompt": "a",
                "chosen": [{"role": "assistant", "content": "b"}],
                "rejected": [{"role": "assistant", "content": "c"}],
            }
        )
        + "\n"
    )
    with pytest.raises(DataError, match="row 2, field 'chosen'.*row 1 holds str"):
        load_preferences(str(path), format="pairwise")


@pytest.mark.parametrize("name", ["out.jsonl", "out.jsonl.gz", "out.json", "out.parquet", "out_dir"])
def test_save_and_reload_round_trip(fixtures, tmp_path, name):
    ds, _ = load_preferences(str(fixtures / "tldr.jsonl"))
    save_dataset(ds, tmp_path / name, "data convert")
    again, _ = load_preferences(str(tmp_path / name))
    assert again.to_list() == ds.to_list()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_cli_validate_exit_codes(fixtures, capsys):
    assert main(["data", "validate", "--input", str(fixtures / "broken.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "row 7" in err and "'rejected'" in err
    assert main(["data", "validate", "--input", str(fixtures / "broken.jsonl"), "--skip_bad_rows"]) == 0
    out = capsys.readouterr().out
    assert "kept 8 rows, skipped 2" in out and "is identical" in out
    assert main(["data", "validate"]) == 2  # missing --input is a usage error


def test_cli_convert_and_inspect(fixtures, tmp_path, capsys):
    out = tmp_path / "hh.parquet"
    assert main(["data", "convert", "--input", str(fixtures / "hh.jsonl"), "--output", str(out)]) == 0
    assert main(["data", "inspect", "--input", str(out), "--rows", "1"]) == 0
    printed = capsys.readouterr().out
    assert "columns: prompt, chosen, rejected" in printed and "Knead it" in printed


def test_hub_id_syntax():
    from deltapref.data.loading import parse_hub_id

    assert parse_hub_id("Anthropic/hh-rlhf") == ("Anthropic/hh-rlhf", None, None)
    assert parse_hub_id("openai/summarize_from_feedback:comparisons@validation") == (
        "openai/summarize_from_feedback",
        "comparisons",
        "validation",
    )
    assert parse_hub_id("./local/file.jsonl") is None and parse_hub_id("a/b/c") is None


def test_loaders_and_sampling_leave_the_callers_random_state_alone(builtin_task):
    """Model loaders and generation seed their own work and give torch's random state back: two
    loads with one seed build the same weights, and the caller's next random number is unchanged."""
    from deltapref.models.loading import load_causal_lm, load_sequence_scorer, load_tokenizer
    from deltapref.policy.generation import generate_completions

    tokenizer = load_tokenizer(str(builtin_task / "tokenizer"))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    policy = load_causal_lm("tiny:32:1", tokenizer, seed=5)
    scorer = load_sequence_scorer("tiny:32:1", tokenizer, seed=5)
    generate_completions(policy, tokenizer, ["q: 3 5 ."], max_new_tokens=4, seed=9, progress=False)
    assert torch.equal(torch.rand(3), expected)
    again = load_causal_lm("tiny:32:1", tokenizer, seed=5)
    assert all(torch.equal(a, b) for a, b in zip(policy.state_dict().values(), again.state_dict().values()))
    other = load_sequence_scorer("tiny:32:1", tokenizer, seed=6)
    assert not torch.equal(next(scorer.parameters()), next(other.parameters()))


JSON_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
MESSAGES = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": JSON_TEXT}))
COLUMN = st.sampled_from(
    [
        JSON_TEXT,
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False),
        st.lists(st.floats(allow_nan=False), max_size=3),
        MESSAGES,
        st.none(),
    ]
)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_rows_become_the_table_datasets_builds_from_them(data):
    """The loader's table (pyarrow's conversion, no hashing) holds what ``Dataset.from_list``
    held for any rows of JSON values: same features, same values, same refusals."""
    import datasets

    from deltapref.data.tables import rows_as_dataset

    kinds = data.draw(st.dictionaries(st.sampled_from(["prompt", "chosen", "w", "extra"]), COLUMN, min_size=1))
    rows = data.draw(
        st.lists(st.fixed_dictionaries({name: st.one_of(kind, st.none()) for name, kind in kinds.items()}), max_size=6)
    )
    try:
        expected = datasets.Dataset.from_list(rows)
    except Exception:  # noqa: BLE001 — rows no table holds: the loader refuses them in one line
        with pytest.raises(DataError):
            rows_as_dataset(rows, list(range(1, len(rows) + 1)), "t.jsonl")
        return
    got = rows_as_dataset(rows, list(range(1, len(rows) + 1)), "t.jsonl")
    assert got.features == expected.features and got.to_list() == expected.to_list()
