"""What real data and real models need: HH transcripts as chat messages, empty HH responses
skipped with a count, generation that stops where the answer ends, one bos, aliases wherever a
tokenizer is accepted, truncation that keeps the response at HH lengths.

Guards: data/adapters.py, data/tokenization.py, policy/generation.py, models/loading.py,
stages/generate.py."""

import gzip
import importlib.util
import json

import pytest

from deltapref.cli import main
from deltapref.config.commands import TokenizationConfig
from deltapref.data import load_preferences
from deltapref.data.adapters import from_hh_chat
from deltapref.data.tokenization import encode_pair, encode_prompt
from deltapref.models.loading import load_tokenizer
from deltapref.policy.generation import cut_at_stops, default_stops, generate_completions

TRANSCRIPT = (
    "\n\nHuman: How do I bake bread?\n\nAssistant: Mix flour, water and yeast.\n\nHuman: And then?\n\nAssistant:"
)


def test_hh_chat_turns_transcripts_into_messages(fixtures):
    row = json.loads((fixtures / "hh.jsonl").read_text().splitlines()[0])
    out = from_hh_chat(row)
    assert out["prompt"] == [
        {"role": "user", "content": "How do I bake bread?"},
        {"role": "assistant", "content": "Mix flour, water and yeast."},
        {"role": "user", "content": "And then?"},
    ]
    assert out["chosen"] == [{"role": "assistant", "content": "Knead it, let it rise, and bake at 220C."}]
    assert out["rejected"] == [{"role": "assistant", "content": "I don't know."}]


@pytest.mark.parametrize("format", ["hh", "hh-chat"])
def test_empty_hh_responses_are_skipped_and_counted_by_default(fixtures, tmp_path, capsys, format):
    rows = [json.loads(line) for line in (fixtures / "hh.jsonl").read_text().splitlines()]
    empty = {"chosen": rows[1]["chosen"].rsplit("Assistant:", 1)[0] + "Assistant:", "rejected": rows[1]["rejected"]}
    path = tmp_path / "hh.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("".join(json.dumps(r) + "\n" for r in [rows[0], empty, rows[1]]))
    assert (
        main(["data", "convert", "--input", str(path), "--format", format, "--output", str(tmp_path / "o.jsonl")]) == 0
    )
    out = capsys.readouterr().out
    assert "kept 2 rows, skipped 1" in out and "row 2, field 'chosen'" in out
    with pytest.raises(Exception, match="row 2, field 'chosen'"):
        load_preferences(str(path), format=format, skip_empty=False)


def test_generation_stops_at_the_next_turn():
    assert default_stops([TRANSCRIPT]) == ["\n\nHuman:", "\n\nAssistant:"]
    assert default_stops([[{"role": "user", "content": "hi"}]]) == []
    assert cut_at_stops(" Knead it.\n\nHuman: thanks\n\nAssistant: ok", default_stops([TRANSCRIPT])) == " Knead it."
    assert cut_at_stops("no stop here", ["\n\nHuman:"]) == "no stop here"


def test_generate_cuts_completions_at_stop_strings(scored_task):
    from deltapref.models.loading import load_causal_lm

    tokenizer, model = load_tokenizer(scored_task["sft"]), load_causal_lm(scored_task["sft"])
    prompts = [json.loads(line)["prompt"] for line in open(scored_task["test"])][:16]
    common = dict(max_new_tokens=16, temperature=1.0, seed=0, progress=False)
    free = generate_completions(model, tokenizer, prompts, stops=[], **common)
    i = next(i for i, text in enumerate(free) if len(text.split()) >= 3)
    stop = " " + free[i].split()[1]
    stopped = generate_completions(model, tokenizer, prompts, stops=[stop], **common)
    assert stopped[i] == free[i].split(stop)[0].strip() and stop not in stopped[i]


def test_an_already_templated_prompt_gets_no_second_bos(builtin_task):
    tokenizer = load_tokenizer(str(builtin_task / "tokenizer"))
    plain = encode_prompt(tokenizer, "tell me about cat ?")
    assert plain[0] == tokenizer.bos_token_id and plain[1] != tokenizer.bos_token_id
    assert encode_prompt(tokenizer, tokenizer.bos_token + " tell me about cat ?") == plain


def test_data_inspect_resolves_tokenizer_aliases(fixtures, capsys):
    assert main(["data", "inspect", "--input", str(fixtures / "hh.jsonl"), "--tokenizer", "minilm"]) == 0
    assert '"prompt": {' in capsys.readouterr().out


def test_truncation_keeps_the_response_at_hh_lengths():
    tokenizer = load_tokenizer("minilm")
    config = TokenizationConfig(128, 64)
    long_prompt = TRANSCRIPT.replace("How do I bake bread?", " ".join(["Please explain bread."] * 60))
    row = {"prompt": long_prompt, "chosen": " Knead it, let it rise, and bake.", "rejected": " No."}
    ids = encode_pair(tokenizer, row, config)
    chosen = tokenizer(row["chosen"], add_special_tokens=False)["input_ids"]
    assert ids["chosen_ids"][: len(chosen)] == chosen  # the response is whole
    assert len(ids["prompt_ids"]) + len(ids["chosen_ids"]) <= 128 and len(ids["prompt_ids"]) == 64
    assert tokenizer.decode(ids["prompt_ids"]).endswith("and then? assistant :")  # the prompt keeps its end


def test_generate_on_vllm_without_vllm_is_one_line_and_writes_nothing(policy, builtin_task, tmp_path, capsys):
    """``--backend vllm`` where vLLM does not import (this test environment: tests/test_vllm.py runs
    in scripts/vllm_check.sh's) names the extra to install; no output file is made."""
    if importlib.util.find_spec("vllm"):
        pytest.skip("vLLM is installed here: tests/test_vllm.py covers the backend")
    out = tmp_path / "completions.jsonl"
    argv = ["generate", "--model", str(policy), "--input", str(builtin_task / "test.jsonl"), "--output", str(out)]
    assert main(argv + ["--backend", "vllm", "--limit", "2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--backend vllm needs vLLM" in err and "deltapref[vllm]" in err
    assert not out.exists()
