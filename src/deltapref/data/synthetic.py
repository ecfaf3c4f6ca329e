"""The built-in gold-reward preference task (DESIGN.md section 5).

Prompts ask about a topic; responses are word sequences from a stochastic base generator. The
gold reward is a fixed, documented function of the text::

    r*(x, y) = 3.0 * (n_on - n_off) / L        relevance: words of the prompt's topic vs others
             + 1.5 * (n_pos - n_neg) / L        tone: positive vs negative words
             + 0.5 * [y repeats a prompt word]  grounding
             - 0.15 * |L - 10|                  length: about ten words is best

with L the number of words of y (punctuation and special tokens do not count). Preference
labels are drawn by Bradley-Terry with temperature T: P(y1 > y2) = sigmoid((r*(y1) - r*(y2)) / T),
so close pairs are often mislabeled; or (``label_noise: flip``) the gold order with a fixed share
of labels flipped whatever the gap. The annotator's confidence (1-9, as in TL;DR) grows with
|P - 0.5| plus noise. Ranked lists (HH+ style, for RRHF) score k responses by r* plus Gaussian
noise (a stand-in for a reward model), or (``ranked_scores: labels``) by the pairs' own noise
process. ``disjoint_test_prompts`` keeps held-out prompts out of the training prompts.
Everything is drawn from one seeded generator: the same seed gives byte-identical files.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from deltapref.artifacts.outputs import write_text
from deltapref.columns import GOLD_REWARD
from deltapref.config.commands import SEED_RANGE, Options, option
from deltapref.data.writing import write_jsonl

TOPICS = {
    "animals": ["cat", "dog", "horse", "bird", "fish", "cow", "sheep", "mouse"],
    "food": ["bread", "apple", "rice", "soup", "cheese", "cake", "tea", "salad"],
    "weather": ["rain", "snow", "wind", "sun", "cloud", "storm", "fog", "heat"],
    "music": ["song", "drum", "piano", "guitar", "violin", "choir", "tune", "band"],
    "sport": ["ball", "goal", "team", "race", "swim", "match", "coach", "score"],
    "travel": ["train", "ship", "road", "map", "city", "plane", "hotel", "trip"],
}
POSITIVE = ["good", "great", "helpful", "kind", "clear", "safe", "nice", "useful"]
NEGATIVE = ["bad", "awful", "rude", "wrong", "unsafe", "boring", "poor", "useless"]
FILLER = ["the", "a", "is", "and", "it", "very", "so", "of", "to", "with", "for", "this"]
PROMPT_LEADS = [["tell", "me", "about"], ["what", "about"], ["explain"], ["describe"], ["talk", "about"]]
PUNCTUATION = ["?", "."]
TEMPLATE_WORDS = ["Query:", "Response", "1:", "2:"]  # the difference model's input template
SPECIAL_TOKENS = {"pad": "<pad>", "unk": "<unk>", "bos": "<s>", "eos": "</s>"}
WORD_TOPIC = {word: topic for topic, words in TOPICS.items() for word in words}
VOCABULARY = (
    list(SPECIAL_TOKENS.values())
    + sorted(WORD_TOPIC)
    + POSITIVE
    + NEGATIVE
    + FILLER
    + sorted({w for lead in PROMPT_LEADS for w in lead} - set(FILLER))
    + PUNCTUATION
    + TEMPLATE_WORDS
)

IDEAL_LENGTH = 10


@dataclass
class SyntheticTaskConfig(Options):
    """How to draw the built-in task."""

    seed: int = option(0, "random seed; the same seed gives byte-identical files", **SEED_RANGE)
    n_train: int = option(2000, "training pairs (one prompt each)", ge=1)
    n_test: int = option(300, "held-out pairs", ge=1)
    temperature: float = option(0.5, "Bradley-Terry label temperature T; larger means noisier labels", gt=0)
    label_noise: Literal["bradley-terry", "flip"] = option(
        "bradley-terry",
        "how labels go wrong: bradley-terry (close pairs flip often, at --temperature); flip: a fixed share "
        "(--flip_rate) of labels flipped whatever the gap (a careless annotator)",
    )
    flip_rate: float = option(0.2, "share of labels flipped with --label_noise flip", ge=0, lt=0.5)
    k_ranked: int = option(4, "responses per prompt in the ranked (HH+ style) lists for RRHF", ge=2)
    ranked_scores: Literal["gaussian", "labels"] = option(
        "gaussian",
        "ranked-list scores: gaussian (gold + N(0, --ranked_noise), a near-gold ranking); labels: the pairs' "
        "noise process (bradley-terry: gold + T x Gumbel noise, a Plackett-Luce ranking whose two-response "
        "case is the pairs' label; flip: gold, the list's order reversed with --flip_rate)",
    )
    ranked_noise: float = option(0.3, "std of the Gaussian noise on ranked-list scores", ge=0)
    disjoint_test_prompts: bool = option(
        True,
        "draw held-out prompts again until none is a training prompt (false: the earlier draw, in which held-out "
        "prompts may recur among the training prompts)",
    )
    min_words: int = option(3, "shortest base response, in words", ge=1)
    max_words: int = option(18, "longest base response, in words", ge=1)

    def __post_init__(self):
        super().__post_init__()
        if self.min_words > self.max_words:
            raise ValueError("need 1 <= min_words <= max_words")


def prompt_topic(prompt: str) -> str | None:
    """The topic most of the prompt's topic words belong to (ties: first in TOPICS order)."""
    counts = {topic: 0 for topic in TOPICS}
    for word in prompt.split():
        if word in WORD_TOPIC:
            counts[WORD_TOPIC[word]] += 1
    best = max(counts, key=lambda t: counts[t])
    return best if counts[best] else None


def gold_reward(prompt: str, response: str) -> float:
    """r*(x, y) as documented in the module docstring; any text is accepted."""
    skip = set(SPECIAL_TOKENS.values()) | set(PUNCTUATION)
    words = [w for w in response.split() if w not in skip]
    length = len(words)
    if length == 0:
        return -0.15 * IDEAL_LENGTH - 3.0
    topic = prompt_topic(prompt)
    n_on = sum(1 for w in words if topic and WORD_TOPIC.get(w) == topic)
    n_off = sum(1 for w in words if w in WORD_TOPIC and WORD_TOPIC[w] != topic)
    n_pos = sum(1 for w in words if w in POSITIVE)
    n_neg = sum(1 for w in words if w in NEGATIVE)
    prompt_words = set(prompt.split()) & set(WORD_TOPIC)
    grounded = any(w in prompt_words for w in words)
    return (
        3.0 * (n_on - n_off) / length
        + 1.5 * (n_pos - n_neg) / length
        + 0.5 * grounded
        - 0.15 * abs(length - IDEAL_LENGTH)
    )


class _Generator:
    def __init__(self, config: SyntheticTaskConfig):
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.topics = list(TOPICS)
        self.avoid: set[str] = set()

    def pick(self, items):
        return items[int(self.rng.integers(len(items)))]

    def prompt(self) -> str:
        """A fresh prompt (never one of ``self.avoid``: the training prompts, for disjoint test prompts)."""
        while True:
            topic = self.pick(self.topics)
            n_words = int(self.rng.integers(1, 4))
            words = [self.pick(TOPICS[topic]) for _ in range(n_words)]
            prompt = " ".join(self.pick(PROMPT_LEADS) + words + ["?"])
            if prompt not in self.avoid:
                return prompt

    def response(self, prompt: str) -> str:
        """The stochastic base policy: each response has its own mix of word kinds."""
        topic = prompt_topic(prompt)
        mix = self.rng.dirichlet([1.2, 0.6, 0.8, 0.6, 1.5])  # on-topic, off-topic, pos, neg, filler
        length = int(self.rng.integers(self.config.min_words, self.config.max_words + 1))
        others = [t for t in self.topics if t != topic]
        prompt_words = [w for w in prompt.split() if w in WORD_TOPIC]
        words = []
        for _ in range(length):
            kind = int(self.rng.choice(5, p=mix))
            if kind == 0:
                pool = prompt_words if prompt_words and self.rng.random() < 0.4 else TOPICS[topic]
                words.append(self.pick(pool))
            elif kind == 1:
                words.append(self.pick(TOPICS[self.pick(others)]))
            else:
                words.append(self.pick([POSITIVE, NEGATIVE, FILLER][kind - 2]))
        # a leading space: prompt + response is the text of the exchange (TRL joins them with no separator);
        # the task's whitespace tokenizer gives the same tokens either way
        return " " + " ".join(words) + " ."

    def pair(self, index: int, split: str) -> tuple[dict, dict]:
        prompt = self.prompt()
        first, second = self.response(prompt), self.response(prompt)
        while second == first:
            second = self.response(prompt)
        r1, r2 = gold_reward(prompt, first), gold_reward(prompt, second)
        p_first = 1.0 / (1.0 + math.exp(-(r1 - r2) / self.config.temperature))
        first_wins = bool(self.rng.random() < p_first)
        if self.config.label_noise == "flip":  # the gold order, flipped with a fixed chance (ties: the draw)
            first_wins = (r1 > r2 or (r1 == r2 and first_wins)) != bool(self.rng.random() < self.config.flip_rate)
        confidence = int(np.clip(round(1 + 8 * abs(2 * p_first - 1) + self.rng.normal(0, 0.75)), 1, 9))
        chosen, rejected = (first, second) if first_wins else (second, first)
        rc, rr = (r1, r2) if first_wins else (r2, r1)
        pair = {
            "id": f"{split}-{index}",
            "prompt": prompt,
            "chosen": chosen,
            "rejected": rejected,
            "confidence": confidence,
            GOLD_REWARD[0]: round(rc, 6),
            GOLD_REWARD[1]: round(rr, 6),
        }
        responses = [first, second] + [self.response(prompt) for _ in range(self.config.k_ranked - 2)]
        ranked = {"id": f"{split}-{index}", "prompt": prompt, "responses": responses}
        ranked["scores"] = [
            round(score, 6) for score in self.ranked_scores([gold_reward(prompt, r) for r in responses])
        ]
        return pair, ranked

    def ranked_scores(self, gold: list[float]) -> list[float]:
        """A ranked list's scores (``ranked_scores``): gold + Gaussian noise, or the pairs' noise process."""
        if self.config.ranked_scores == "gaussian":
            return [g + float(self.rng.normal(0, self.config.ranked_noise)) for g in gold]
        if self.config.label_noise == "bradley-terry":  # Gumbel-max: Plackett-Luce on gold / T
            return [g + self.config.temperature * float(self.rng.gumbel()) for g in gold]
        reverse = bool(self.rng.random() < self.config.flip_rate)
        return [-g for g in gold] if reverse else list(gold)


def generate_task(config: SyntheticTaskConfig) -> dict[str, list[dict]]:
    """Draw the task: ``{"train", "test", "ranked_train", "ranked_test"}`` lists of rows."""
    generator = _Generator(config)
    out: dict[str, list[dict]] = {}
    for split, size in (("train", config.n_train), ("test", config.n_test)):
        if split == "test" and config.disjoint_test_prompts:
            generator.avoid = {row["prompt"] for row in out["train"]}
        pairs, ranked = zip(*(generator.pair(i, split) for i in range(size)))
        out[split], out[f"ranked_{split}"] = list(pairs), list(ranked)
    return out


def label_noise_by_gap(rows: list[dict], edges=(0.0, 0.25, 0.5, 1.0, 2.0, math.inf)) -> list[dict]:
    """Share of pairs whose label disagrees with the gold reward, by |gold gap| bucket."""
    table = []
    for low, high in zip(edges[:-1], edges[1:]):
        bucket = [r for r in rows if low <= abs(r[GOLD_REWARD[0]] - r[GOLD_REWARD[1]]) < high]
        wrong = sum(r[GOLD_REWARD[0]] < r[GOLD_REWARD[1]] for r in bucket)
        table.append(
            {
                "gap_low": low,
                "gap_high": None if math.isinf(high) else high,
                "pairs": len(bucket),
                "noise_rate": wrong / len(bucket) if bucket else float("nan"),
            }
        )
    return table


def build_tokenizer():
    """A word-level tokenizer for the task's vocabulary, as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(VOCABULARY)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL_TOKENS["unk"]))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=SPECIAL_TOKENS["pad"],
        unk_token=SPECIAL_TOKENS["unk"],
        bos_token=SPECIAL_TOKENS["bos"],
        eos_token=SPECIAL_TOKENS["eos"],
        model_max_length=128,
    )


def write_task(config: SyntheticTaskConfig, output_dir: str | Path) -> dict:
    """Write the task to ``output_dir``: JSONL splits, ``tokenizer/`` and ``task.json``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    task = generate_task(config)
    for name, rows in task.items():
        write_jsonl(rows, output_dir / f"{name}.jsonl")
    build_tokenizer().save_pretrained(str(output_dir / "tokenizer"))
    summary = summarize_task(task, config)
    write_text(output_dir / "task.json", json.dumps(summary, indent=2) + "\n")
    return summary


def summarize_task(task: dict[str, list[dict]], config: SyntheticTaskConfig) -> dict:
    train = task["train"]
    gaps = [r[GOLD_REWARD[0]] - r[GOLD_REWARD[1]] for r in train]
    return {
        "config": asdict(config),
        "sizes": {name: len(rows) for name, rows in task.items()},
        "vocabulary_size": len(VOCABULARY),
        "train_label_noise": sum(g < 0 for g in gaps) / len(gaps),
        "train_mean_abs_gold_gap": float(np.mean(np.abs(gaps))),
        "train_label_noise_by_gap": label_noise_by_gap(train),
        "gold_reward": "3.0*(n_on-n_off)/L + 1.5*(n_pos-n_neg)/L + 0.5*[grounded] - 0.15*|L-10|",
    }
