"""Adapters from common public preference-data shapes to the normalized schema.

Each adapter maps one raw row to one normalized row and raises :class:`DataError` naming the
field when the raw row does not have the shape it expects. ``detect_format`` picks an adapter
from a row's keys; users can name one explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from deltapref.data.schema import DataError

HH_ASSISTANT = "\n\nAssistant:"


def _require(row: dict, *names: str) -> None:
    for name in names:
        if name not in row or row[name] is None:
            raise DataError("is missing", field=name)


def from_pairwise(row: dict) -> dict:
    """Already normalized (rm-static, deltapref's own files): prompt/chosen/rejected + extras."""
    _require(row, "prompt", "chosen", "rejected")
    out = dict(row)
    for old, new in (("score_chosen", "chosen_score"), ("score_rejected", "rejected_score")):
        if old in out:
            out[new] = out.pop(old)
    return out


def from_ranked(row: dict) -> dict:
    """HH+ style ranked lists: prompt, responses, scores (RRHF)."""
    _require(row, "prompt", "responses", "scores")
    return dict(row)


def from_hh(row: dict) -> dict:
    """Anthropic HH-RLHF: two full transcripts; the prompt is their shared part up to the last
    ``\\n\\nAssistant:``, the completions are what follows it."""
    _require(row, "chosen", "rejected")
    chosen, rejected = row["chosen"], row["rejected"]
    for name, text in (("chosen", chosen), ("rejected", rejected)):
        if not isinstance(text, str):
            raise DataError(f"must be a transcript string, got {type(text).__name__}", field=name)
    shared = 0
    limit = min(len(chosen), len(rejected))
    while shared < limit and chosen[shared] == rejected[shared]:
        shared += 1
    cut = chosen.rfind(HH_ASSISTANT, 0, shared)
    if cut < 0:
        raise DataError("has no shared '\\n\\nAssistant:' turn with 'rejected'", field="chosen")
    end = cut + len(HH_ASSISTANT)
    out = {k: v for k, v in row.items() if k not in ("chosen", "rejected")}
    out.update(prompt=chosen[:end], chosen=chosen[end:], rejected=rejected[end:])
    return out


HH_TURN = re.compile(r"\n\n(Human|Assistant):")


def from_hh_chat(row: dict) -> dict:
    """HH-RLHF for chat models: as :func:`from_hh`, with the prompt's transcript turned into chat
    messages (Human → user, Assistant → assistant) and each completion into one assistant
    message, so the model's own chat template frames every turn."""
    out = from_hh(row)
    parts = HH_TURN.split(out["prompt"])
    messages = [
        {"role": "user" if speaker == "Human" else "assistant", "content": text.strip()}
        for speaker, text in zip(parts[1::2], parts[2::2])
    ]
    if not messages or messages[-1] != {"role": "assistant", "content": ""}:
        raise DataError("does not end with an open '\n\nAssistant:' turn", field="chosen")
    out["prompt"] = messages[:-1]
    for name in ("chosen", "rejected"):
        out[name] = [{"role": "assistant", "content": out[name].strip()}]
    return out


def from_tldr(row: dict) -> dict:
    """OpenAI TL;DR comparisons: ``info`` (post/title/subreddit), two ``summaries``, ``choice``,
    optional ``extra.confidence`` (1-9)."""
    _require(row, "info", "summaries", "choice")
    info, summaries, choice = row["info"], row["summaries"], row["choice"]
    if not isinstance(info, dict) or "post" not in info:
        raise DataError("must be a dict with a 'post'", field="info")
    if not isinstance(summaries, list) or len(summaries) != 2:
        raise DataError("must be a list of 2 summaries", field="summaries")
    if isinstance(choice, float) and choice in (0.0, 1.0):
        choice = int(choice)  # 1.0: a choice written by a tool that stores numbers as floats
    if isinstance(choice, bool) or choice not in (0, 1):
        raise DataError(f"must be 0 or 1, got {choice!r}", field="choice")
    texts = []
    for i, summary in enumerate(summaries):
        text = summary.get("text") if isinstance(summary, dict) else None
        if not isinstance(text, str):
            raise DataError("has no 'text'", field=f"summaries[{choice}]" if i == choice else f"summaries[{i}]")
        texts.append(text)
    prompt = (
        f"SUBREDDIT: r/{info.get('subreddit') or ''}\nTITLE: {info.get('title') or ''}\nPOST: {info['post']}\nTL;DR:"
    )
    out = {"prompt": prompt, "chosen": texts[choice], "rejected": texts[1 - choice]}
    if info.get("id") is not None:
        out["id"] = str(info["id"])
    extra = row.get("extra") or {}
    if isinstance(extra, dict) and extra.get("confidence") is not None:
        out["confidence"] = extra["confidence"]
    return out


def from_ultrafeedback(row: dict) -> dict:
    """UltraFeedback binarized: ``chosen``/``rejected`` are full message lists ending with the
    assistant reply; ``score_chosen``/``score_rejected`` are ratings."""
    _require(row, "chosen", "rejected")
    chosen, rejected = row["chosen"], row["rejected"]
    for name, messages in (("chosen", chosen), ("rejected", rejected)):
        if (
            not isinstance(messages, list)
            or not messages
            or not isinstance(messages[-1], dict)
            or messages[-1].get("role") != "assistant"
        ):
            raise DataError("must be a message list ending with an assistant message", field=name)
    if chosen[:-1] != rejected[:-1]:
        raise DataError("conversation before the reply differs from 'chosen'", field="rejected")
    out = {
        "prompt": list(chosen[:-1]) or [{"role": "user", "content": row.get("prompt", "")}],
        "chosen": [chosen[-1]],
        "rejected": [rejected[-1]],
    }
    for old, new in (("score_chosen", "chosen_score"), ("score_rejected", "rejected_score")):
        if row.get(old) is not None:
            out[new] = row[old]
    if row.get("prompt_id") is not None:
        out["id"] = str(row["prompt_id"])
    return out


ADAPTERS: dict[str, Callable[[dict], dict]] = {
    "pairwise": from_pairwise,
    "rm-static": from_pairwise,
    "ranked": from_ranked,
    "hh": from_hh,
    "hh-chat": from_hh_chat,
    "tldr": from_tldr,
    "ultrafeedback": from_ultrafeedback,
}


def detect_format(row: dict) -> str:
    """Guess the adapter name from one raw row's keys."""
    if "responses" in row:
        return "ranked"
    if "info" in row and "summaries" in row:
        return "tldr"
    if "chosen" in row and "rejected" in row:
        chosen = row["chosen"]
        if "prompt" not in row or (
            isinstance(chosen, list) and chosen and isinstance(chosen[0], dict) and chosen[0].get("role") != "assistant"
        ):
            return "hh" if isinstance(chosen, str) else "ultrafeedback"
        return "pairwise"
    raise DataError(
        f"cannot tell the data format from its keys {sorted(row)}; pass --format (one of {', '.join(ADAPTERS)})"
    )
