"""RDO's difference model as a scorer kind: one forward pass reads d(x, y1, y2) for a pair."""

from __future__ import annotations

from typing import Literal

from deltapref.coefficients import Source
from deltapref.columns import DIFF
from deltapref.config.commands import option
from deltapref.models.loading import is_classifier
from deltapref.scorer_kinds.base import ScorerKind, Setting, by_fold, texts
from deltapref.scorer_kinds.inference import balanced_differences, pair_differences

ORDER = Setting(
    "difference_order",
    Literal["balanced", "shown"],
    option(
        "balanced",
        "difference model: balanced = (d(x,w,l) − d(x,l,w))/2, antisymmetric by construction (two passes); "
        "shown = d(x,w,l) alone (one pass; trusts the model to be antisymmetric)",
    ),
)


# deltapref's pair input and readouts in plain transformers (data/scorer_inputs.difference_ids, readouts.py)
PLAIN_CODE = """import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

model = AutoModelForSequenceClassification.from_pretrained("DIR").eval()
tokenizer = AutoTokenizer.from_pretrained("DIR")
readout = getattr(model.config, "deltapref_difference_readout", "pooled")


def pair_input(prompt: str, first: str, second: str) -> tuple[dict, int, int]:
    \"\"\"Query / Response 1 / Response 2 in one sequence, and where each response's part starts.\"\"\"
    ids = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    cls, sep, bos, eos = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id
    encoder = cls is not None and sep is not None and bos is None
    start, end = ([cls], [sep]) if encoder else ([bos] if bos is not None else [], [eos] if eos is not None else [])
    query = start + ids("Query: ") + ids(prompt)
    head = query + ids("\\nResponse 1: ") + ids(first)
    sequence = head + ids("\\nResponse 2: ") + ids(second) + end
    inputs = {"input_ids": torch.tensor([sequence])}
    if encoder and "token_type_ids" in tokenizer.model_input_names:  # the second response is segment 1
        inputs["token_type_ids"] = torch.tensor([[0] * len(head) + [1] * (len(sequence) - len(head))])
    return inputs, len(query), len(head)


def d(prompt: str, first: str, second: str) -> float:
    inputs, first_start, second_start = pair_input(prompt, first, second)
    with torch.no_grad():
        if readout != "contrast":
            return model(**inputs).logits[0, 0].item()
        hidden = model(**inputs, output_hidden_states=True).hidden_states[-1][0]
        head = model.classifier if hasattr(model, "classifier") else model.score
        return head(hidden[first_start:second_start].mean(0) - hidden[second_start:].mean(0)).item()


def difference(prompt: str, chosen: str, rejected: str) -> float:
    \"\"\"`diff` as `deltapref score` writes it by default (--difference_order balanced).\"\"\"
    return (d(prompt, chosen, rejected) - d(prompt, rejected, chosen)) / 2
"""


class DifferenceKind(ScorerKind):
    name = "difference"
    option = "difference_model"
    help = "difference model directory"
    what = "a difference model"
    source = Source((DIFF,), lambda c: c[DIFF])  # d(x, y_w, y_l)
    pairwise = True
    settings = (ORDER,)

    def card_loading(self, name):
        return (
            super().card_loading(name)
            + " Its `diff` in plain `transformers` (a text prompt and responses, the prompt within the "
            f"`--max_prompt_length` and the pair within the length it was trained at):\n\n```python\n{PLAIN_CODE}```"
        ).replace("DIR", name)

    def problem(self, config):
        if config.get("deltapref_kind") in ("reward", "oracle", "policy"):
            return "it scores single responses, not pairs"
        return None if is_classifier(config) else "it has no pair-scoring head"

    def score(self, loaded, rows, config):
        differences = balanced_differences if config.difference_order == "balanced" else pair_differences
        return {DIFF: by_fold(differences, loaded, rows, *texts(rows), config=config)}

    def provenance(self, value, config, column):
        return {**super().provenance(value, config, column), "order": config.difference_order}
