"""Score finished runs on grounding: key facts, user-file citations, repeats, verdicts, time.

    python benchmarks/report_quality.py RUN_DIR [RUN_DIR …] [--checklist F] [--json OUT]

Each RUN_DIR is a ``deepfolder run`` output directory. ``--checklist`` names a key-fact
checklist (``benchmarks/grounding_checklist.json`` for the reading-report case built by
``benchmarks/grounding_case.py``); without it, recall is not measured. What each measure
means: :mod:`deepfolder.eval.report_quality`. Prints one row per run, the facts missed,
the repeated sentences and the failed checks; ``--json`` writes everything.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deepfolder.eval.report_quality import (
    KeyFact,
    QualityInputError,
    ReportQuality,
    load_checklist,
    score_run_dir,
)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"


def row(name: str, q: ReportQuality) -> str:
    verdict = "–" if q.validation is None else ("pass" if q.validation["passed"] else "FAIL")
    user_sections = sum(s.cites_user_material for s in q.sections)
    seconds = "–" if q.run_seconds is None else f"{q.run_seconds:.0f}"
    return (
        f"| {name} | {q.length_zi} | {_pct(q.fact_recall)} | "
        f"{q.user_citations}/{q.citations - q.unresolved_citations} "
        f"({_pct(q.user_citation_share)}) | {user_sections}/{len(q.sections)} | "
        f"{len(q.repeated)}/{q.sentences} ({_pct(q.repeated_share)}) | {verdict} | {seconds} |"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--checklist", type=Path, help="key-fact checklist JSON")
    parser.add_argument("--json", type=Path, help="write every measure here")
    args = parser.parse_args(argv)
    facts: list[KeyFact] | None = None
    try:
        facts = load_checklist(args.checklist) if args.checklist else None
        scored = {str(d): score_run_dir(d, facts) for d in args.run_dirs}
    except QualityInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        "| run | 字 | key facts | user-file citations | sections citing user files "
        "| repeated sentences | validation | seconds after ingest |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, q in scored.items():
        print(row(name, q))
    for name, q in scored.items():
        print(f"\n## {name}")
        if facts is not None:
            print(f"facts missing: {', '.join(q.facts_missing) or 'none'}")
        for s in q.sections:
            print(f"section {s.title or '(untitled)'!r}: {s.user_citations}/{s.citations} user")
        for r in q.repeated:
            print(f"repeated ({r.similarity:.2f}): {r.sentence[:70]!r} ~ {r.earlier[:70]!r}")
        if q.validation:
            print(f"failed checks: {', '.join(q.validation['failed_checks']) or 'none'}")
    if args.json:
        data = {name: q.to_dict() for name, q in scored.items()}
        args.json.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
