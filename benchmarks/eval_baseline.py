"""Measure finished runs with ``deepfolder eval reports`` and put the tables into
``docs/benchmarks.md``'s report-evaluation section.

    python benchmarks/eval_baseline.py PATH [PATH …] [--compare OTHER …]
        [--label NAME] [--compare-label NAME]
        [--judge embedded|provider:model [--judge-base-url URL]] [--out DIR]
        [--doc docs/benchmarks.md] [--title "…"] [--no-doc]

Each PATH is a run directory or a batch directory (e.g. the three shared cases run with
the embedded model: ``deepfolder batch ../shared/data/cases --tasks 002 008 009``). The
command runs ``deepfolder eval reports`` in-process with the same options, then replaces
the block between ``<!-- eval-baseline:start -->`` and ``<!-- eval-baseline:end -->``
in ``--doc`` with ``eval.md``'s tables (headings moved under the section), the command
and the date. The runs are only read; nothing is run with a model except the judge.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import time
from pathlib import Path

from deepfolder.cli import main as deepfolder_main

REPO = Path(__file__).resolve().parents[1]
START = "<!-- eval-baseline:start -->"
END = "<!-- eval-baseline:end -->"


def doc_block(eval_md: str, command: list[str], title: str) -> str:
    """``eval.md`` as a block of the benchmarks page: its title replaced by ``title``,
    its headings two levels down, the command that made it."""
    body = eval_md.split("\n", 1)[1] if eval_md.startswith("# ") else eval_md
    body = re.sub(r"^(#{2,4}) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", body, flags=re.M)
    return "\n".join(
        [
            START,
            f"### {title}",
            "",
            f"Measured {time.strftime('%Y-%m-%d')} with `{shlex.join(command)}`.",
            "",
            body.strip(),
            END,
        ]
    )


def put_block(doc: Path, block: str) -> None:
    """Replace the marked block of ``doc``, or append it (under its own section) when the
    page has none yet."""
    text = doc.read_text(encoding="utf-8")
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n## Report evaluation (`deepfolder eval reports`)\n\n"
        text += block + "\n"
    doc.write_text(text, encoding="utf-8")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", type=Path, nargs="+", help="run or batch directories")
    parser.add_argument("--compare", type=Path, nargs="+", help="the baseline's directories")
    parser.add_argument("--label", help="name of PATH's runs in the tables")
    parser.add_argument("--compare-label", help="name of the baseline's runs")
    parser.add_argument("--judge", help="'embedded' or 'provider:model'")
    parser.add_argument("--judge-base-url")
    parser.add_argument("--out", type=Path, help="default runs/eval-baseline-<time>/")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--title", default="Baseline: the shared cases, embedded model")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave --doc alone")
    args = parser.parse_args(argv)
    out = args.out or Path("runs") / f"eval-baseline-{time.strftime('%Y%m%d-%H%M%S')}"
    command = ["eval", "reports", *map(str, args.paths)]
    if args.compare:
        command += ["--compare", *map(str, args.compare)]
    for option, value in (("--label", args.label), ("--compare-label", args.compare_label)):
        if value:
            command += [option, value]
    if args.judge:
        command += ["--judge", args.judge]
    if args.judge_base_url:
        command += ["--judge-base-url", args.judge_base_url]
    code = deepfolder_main([*command, "--out", str(out)])
    if code != 0:
        return code
    block = doc_block(
        (out / "eval.md").read_text(encoding="utf-8"), ["deepfolder", *command], args.title
    )
    if args.no_doc:
        print(block)
    else:
        put_block(args.doc, block)
        print(f"{args.doc}: section updated ({out / 'eval.md'})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
