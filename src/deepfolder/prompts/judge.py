"""What the support judge is told: one claim of the report, the evidence it cites, and
the three verdicts, answered as JSON (``validate.support.model_verdict``)."""

from __future__ import annotations

from collections.abc import Sequence

from deepfolder.records import Evidence

JUDGE_PROMPT = """You check citations in a research report.
Claim (one sentence of the report):
{claim}

Cited evidence:
{evidence}

Does the evidence support the claim? Answer "supported" if everything the claim states
(facts, numbers, names, dates) is in the evidence, "weak" if the evidence is related but
supports only part of it or only loosely, "unsupported" if the evidence does not say it or
contradicts it. Reply with JSON only: {{"verdict": "...", "reason": "one short sentence"}}"""


def judge_prompt(claim: str, evidence: Sequence[Evidence]) -> str:
    """The judge's one message: the claim and each cited passage under its id."""
    text = "\n\n".join(f"[{ev.id}] {ev.segment.text}" for ev in evidence)
    return JUDGE_PROMPT.format(claim=claim, evidence=text)
