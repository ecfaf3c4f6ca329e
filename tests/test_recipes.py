"""The GPU recipes parse, validate, and run end to end with the tiny model and local fixtures
swapped in for hub models and data.

Guards: recipes/pipeline.py, recipes/recipe_file.py (the shipped recipes/)."""

import copy
import json
from pathlib import Path

import pytest

from deltapref.data.loading import parse_hub_id
from deltapref.recipes.pipeline import load_recipe, run_pipeline

RECIPES = sorted((Path(__file__).parent.parent / "recipes").glob("*.yaml"))
FIXTURE_FOR_FORMAT = {"hh": "hh.jsonl", "tldr": "tldr.jsonl", "ultrafeedback": "ultrafeedback.json"}
ALIASES = ("smollm2", "minilm")
DROP = {
    "bf16",
    "fp16",
    "activation_checkpointing",
    "gradient_checkpointing",
    "dtype",
    "gradient_accumulation_steps",
    "lora_r",
    "num_train_epochs",
}


def test_there_are_paper_recipes():
    assert {p.stem for p in RECIPES} >= {"hh-rdo", "tldr-drdo", "ultrafeedback-drdo", "hh-cpu"}


def hh_pairs(path: Path, n: int = 16) -> Path:
    """n HH-style transcript pairs (for recipes that read a local HH file)."""
    rows = []
    for i in range(n):
        prompt = f"\n\nHuman: question {i}: how do I cook rice?\n\nAssistant:"
        rows.append({"chosen": prompt + f" Rinse it and boil it {i} times.", "rejected": prompt + " No idea."})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_dry_run_validates_every_stage(path, tmp_path):
    stages = run_pipeline(load_recipe(path), tmp_path / "run", dry_run=True)
    assert len(stages) == len(load_recipe(path)["stages"]) and not (tmp_path / "run").exists()


def swap_in_tiny(recipe: dict, fixtures: Path, tokenizer: str, local: Path) -> dict:
    recipe = copy.deepcopy(recipe)
    for stage in recipe["stages"].values():
        args = stage["args"]
        for key in list(args):
            if key in DROP:
                del args[key]
        if "input" in args and parse_hub_id(str(args["input"])):
            args["input"] = str(fixtures / FIXTURE_FOR_FORMAT[args["format"]])
        if stage["command"] == "data partition" and "{" in str(args["input"]):  # a part of an earlier part
            sizes = [part.split("=") for part in args["parts"].split(",")]
            args["parts"] = ",".join(f"{name}={'rest' if size == 'rest' else 2}" for name, size in sizes)
        elif stage["command"] == "data partition":
            args.update(input=str(hh_pairs(local / "hh16.jsonl")), parts="scorer=4,policy=4,judge=4,test=rest")
        if "model" in args and (parse_hub_id(str(args["model"])) or args["model"] in ALIASES):
            args.update(model="tiny:32:1", tokenizer=tokenizer)
        if stage["command"] == "evaluate compare":
            args["judges"] = "reward:{judge}"
        if stage["command"] in ("sft", "align", "train-scorer"):
            args.update(
                max_steps=2, per_device_train_batch_size=2, disable_tqdm=True, max_length=96, max_prompt_length=48
            )
        if stage["command"] == "score":
            args.update(max_length=96, max_prompt_length=48)
        if stage["command"] == "generate":
            args.update(limit=2, max_new_tokens=4)
    return recipe


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_runs_with_tiny_model(path, tmp_path, fixtures, builtin_task):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(builtin_task / "tokenizer"))
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] }} {{ m['content'] }} </s> {% endfor %}"
        "{% if add_generation_prompt %}assistant {% endif %}"
    )
    tokenizer.save_pretrained(str(tmp_path / "tokenizer"))
    recipe = swap_in_tiny(load_recipe(path), fixtures, str(tmp_path / "tokenizer"), tmp_path)
    stages = run_pipeline(recipe, tmp_path / "run")
    assert set(stages) == set(recipe["stages"])
    assert (tmp_path / "run" / "report" / "results.json").exists()


@pytest.mark.parametrize("path", sorted((Path(__file__).parent.parent / "docs" / "drdo").glob("*.yaml")), ids=str)
def test_the_recipes_behind_results_still_validate(path, tmp_path):
    """docs/drdo's recipes (docs/RESULTS.md's DRDO section) stay runnable as committed."""
    stages = run_pipeline(load_recipe(path), tmp_path / "run", dry_run=True)
    assert any(name.startswith("drdo") for name in stages)


REAL_DATA_RECIPES = sorted((Path(__file__).parent.parent / "docs").glob("hh-*/*.yaml"))


@pytest.mark.parametrize("path", REAL_DATA_RECIPES, ids=str)
def test_the_real_data_recipes_behind_results_parse(path, tmp_path):
    """docs/hh-*'s recipes (docs/RESULTS.md's real-data sections) parse and validate as committed."""
    stages = run_pipeline(load_recipe(path), tmp_path / "run", dry_run=True)
    assert "reward" in stages or "difference" in stages
