"""The pointwise kinds deltapref trains: the Bradley–Terry reward model and DRDO's oracle (a
causal LM with a reward head). Each writes r(x, y_w) and r(x, y_l); Δ is their gap."""

from __future__ import annotations

from deltapref.coefficients import gap
from deltapref.columns import ORACLE_REWARD, REWARD
from deltapref.models.loading import is_classifier
from deltapref.scorer_kinds.base import ScorerKind, by_fold, texts
from deltapref.scorer_kinds.inference import pointwise_rewards

# deltapref's pointwise input in plain transformers (data/scorer_inputs.pointwise_ids) for text within
# --max_length whose prompt fits --max_prompt_length
INPUT_CODE = """def input_ids(prompt: str, response: str) -> torch.Tensor:
    \"\"\"[CLS] x [SEP] y [SEP] on an encoder (no token types), [bos] x y [eos] on a decoder.\"\"\"
    ids = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    cls, sep, bos, eos = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id
    if cls is not None and sep is not None and bos is None:
        return torch.tensor([[cls, *ids(prompt), sep, *ids(response), sep]])
    head = ids(prompt)
    head = head if bos is None or head[:1] == [bos] else [bos, *head]
    return torch.tensor([head + ids(response) + ([eos] if eos is not None else [])])
"""


class PointwiseKind(ScorerKind):
    def card_loading(self, name):
        return (
            super().card_loading(name)
            + f" Its scores in plain `transformers` (a text prompt and response, within the `--max_length` and "
            f"`--max_prompt_length` it scored at):\n\n```python\n{self.plain_code(name)}```"
        )

    def plain_code(self, name: str) -> str:
        raise NotImplementedError

    def score(self, loaded, rows, config):
        prompts, chosen, rejected = texts(rows)
        values = [by_fold(pointwise_rewards, loaded, rows, prompts, side, config=config) for side in (chosen, rejected)]
        return dict(zip(self.source.columns, values))


class RewardKind(PointwiseKind):
    name = "reward"
    option = "reward_model"
    help = "pointwise reward model directory"
    what = "a pointwise reward model (reward model or oracle)"
    source = gap(REWARD)

    def plain_code(self, name):
        return (
            "import torch\nfrom transformers import AutoModelForSequenceClassification, AutoTokenizer\n\n"
            f'model = AutoModelForSequenceClassification.from_pretrained("{name}").eval()\n'
            f'tokenizer = AutoTokenizer.from_pretrained("{name}")\n\n\n{INPUT_CODE}\n\n'
            "def reward(prompt: str, response: str) -> float:\n"
            "    with torch.no_grad():\n"
            "        return model(input_ids=input_ids(prompt, response)).logits[0, 0].item()\n"
        )

    def problem(self, config):
        if config.get("deltapref_kind") == "difference":
            return "it scores pairs, not single responses (pass it as --difference_model)"
        if not is_classifier(config) and not config.get("deltapref_reward_head"):
            return "it has no reward head"
        return None


class OracleKind(PointwiseKind):
    name = "oracle"
    option = "oracle"
    help = "DRDO oracle directory (causal LM with reward head)"
    what = "an oracle (a causal LM with a reward head)"
    source = gap(ORACLE_REWARD)

    def plain_code(self, name):
        return (
            "import glob\n\nimport torch\nfrom safetensors.torch import load_file\n"
            "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
            f'model = AutoModelForCausalLM.from_pretrained("{name}").eval()\n'
            f'tokenizer = AutoTokenizer.from_pretrained("{name}")\n'
            f'weights = {{k: v for f in glob.glob("{name}/*.safetensors") for k, v in load_file(f).items()}}\n'
            'head_weight, head_bias = weights["reward_head.weight"], weights["reward_head.bias"]  # hidden -> 1\n\n\n'
            f"{INPUT_CODE}\n\n"
            "def reward(prompt: str, response: str) -> float:\n"
            '    """The reward head on the last token\'s final hidden state."""\n'
            "    with torch.no_grad():\n"
            "        output = model(input_ids=input_ids(prompt, response), output_hidden_states=True)\n"
            "        return (output.hidden_states[-1][0, -1] @ head_weight[0] + head_bias[0]).item()\n"
        )

    def problem(self, config):
        return None if config.get("deltapref_reward_head") else "it has no reward head"
