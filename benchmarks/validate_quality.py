"""The validator's report-quality checks on real material (docs/notes/validate.md).

    python benchmarks/validate_quality.py

1. Template text: how many sentences of the case collections (real web pages) the
   placeholder/filler patterns match — each is a false alarm when a report quotes it —
   and what they find in case 002's slide deck (a template with ``20xx.xx.xx`` dates).
2. Speed: ``validate_report`` on a ~4,000 字 report of six sections and 45 citations built
   from case-002 collection text (alternate evidence attributed to the user's PDF, so the
   user_material check runs), four calls (the first loads jieba's dictionary).

Needs ../shared/data/cases (skipped when absent).
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

from deepfolder.records import Evidence, Locator, Segment, Source
from deepfolder.request_model import parse_request
from deepfolder.validate.checks import validate_report
from deepfolder.validate.length import count_length
from deepfolder.validate.placeholders import template_text

ROOT = Path(__file__).resolve().parents[1]
CASES = next(
    (
        p
        for p in (ROOT.parent / "shared/data/cases", ROOT.parents[1] / "shared/data/cases")
        if p.is_dir()
    ),
    ROOT.parent / "shared/data/cases",
)
SENTENCE = re.compile(r"(?<=[。！？!?；;\n])|(?<=[.])\s+")


def _article_text(article: dict[str, str]) -> str:
    return article.get("content") or article.get("page_body") or ""


def template_scan() -> None:
    total, hits = 0, []
    for path in sorted(CASES.glob("*/long_context_sampled_128k.json")):
        for article in json.loads(path.read_text(encoding="utf-8")):
            for sentence in SENTENCE.split(_article_text(article)):
                if sentence.strip():
                    total += 1
                    if (hit := template_text(sentence)) is not None:
                        hits.append((path.parent.name, hit, sentence.strip()[:70]))
    print(f"collections: {len(hits)} of {total} sentences hold template text")
    for case, hit, sentence in hits:
        print(f"  {case} {hit}: {sentence}")
    deck = CASES / "002" / "006law.pptx"
    if deck.is_file():
        from pptx import Presentation

        paragraphs = [
            (n, "".join(r.text for r in p.runs).strip())
            for n, slide in enumerate(Presentation(str(deck)).slides, 1)
            for shape in slide.shapes
            if shape.has_text_frame
            for p in shape.text_frame.paragraphs
        ]
        found = [(n, t) for n, t in paragraphs if t and template_text(t)]
        print(f"002 slide deck: {len(found)} of {sum(1 for _, t in paragraphs if t)} paragraphs")
        for n, text in found:
            print(f"  slide {n}: {text}")


def speed() -> None:
    queries = {
        row["task"]: row["query"]
        for row in map(json.loads, (CASES / "query.jsonl").read_text(encoding="utf-8").splitlines())
    }
    constraints = parse_request(queries["002"].replace("1200–1500", "3500–5000"))
    articles = json.loads((CASES / "002" / "long_context_sampled_128k.json").read_text("utf-8"))
    pdf = Source(id="直播电商高质量发展.pdf", path="直播电商高质量发展.pdf", kind="pdf")
    evidence = []
    for i, article in enumerate(articles[:150]):
        sentences = [s for s in re.split(r"(?<=。)", _article_text(article)) if 20 <= len(s) <= 80]
        if not sentences:
            continue
        if i % 2 == 0:
            source, locator = pdf, Locator(page=i + 1)
        else:
            source = Source(id=f"c.json#{i}", path="c.json", kind="article", article=i)
            locator = Locator(article=i, chunk=0)
        evidence.append(
            Evidence(Segment.create(source.id, "".join(sentences[:2]), locator), source)
        )
    lines = ["# 避风港原则在直播带货场景中的适用性分析报告", ""]
    used = iter(evidence)
    for section in constraints.sections[:-1]:
        cited = [
            f"{ev.segment.text.strip()}[{ev.id}]" for ev, _ in zip(used, range(9), strict=False)
        ]
        lines += [f"## {section.display}", "", "".join(cited[:5]), "", "".join(cited[5:]), ""]
    lines += [f"## {constraints.sections[-1].display}", ""]
    report = "\n".join(lines)
    by_id = {ev.id: ev for ev in evidence}
    times, result = [], None
    for _ in range(4):
        start = time.perf_counter()
        result = validate_report(report, constraints, resolve=by_id.get, seen_ids=set(by_id))
        times.append((time.perf_counter() - start) * 1000)
    assert result is not None
    size = count_length(report, "字", constraints.reference_section)
    print(
        f"validate_report, {size} 字, {len(result.citations)} citations: "
        + ", ".join(f"{t:.0f} ms" for t in times)
    )
    for name in ("request_shape", "user_material", "repetition", "placeholder_text"):
        check = result.check(name)
        print(f"  {name}: {check.passed if check else None} ({check.measured if check else ''})")


def main() -> int:
    if not CASES.is_dir():
        print(f"{CASES} is absent; nothing to measure")
        return 0
    template_scan()
    speed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
