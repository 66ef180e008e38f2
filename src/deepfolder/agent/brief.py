"""A factual brief of the user's own files, built in code before any planning.

The folder of a task holds two kinds of material: the files the user put there (a paper,
slides, a sheet, a video…) and background collections of web pages
(``long_context*.json``). A request such as "基于我提供的论文及相关视频…" is about the
first kind. A small model that only sees search results for the section titles ends up
writing about whatever the web pages say, so the brief states — from the files
themselves, each fact with the passage it came from — what the user's material is:
a PDF's title, authors, venue, abstract and section headings; slide titles; sheet
schemas; a video's on-screen titles and the opening of its speech; an image's text.

Plans, queries and the agent's task message start from the brief; its facts are
evidence (citable, with their page / slide / second), so a report can state them with
a checkable citation. Nothing here is produced by a model.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from deepfolder.index.base import Index
from deepfolder.records import SUPPLIED_KIND, Evidence, Segment, Source
from deepfolder.request_model import cjk_ratio
from deepfolder.validate.placeholders import PLACEHOLDER

MEDIA_KINDS = {"video", "audio"}
DOCUMENT_KINDS = {"pdf", "docx", "text", "markdown", "html"}
MAX_HEADINGS = 12
ABSTRACT_CHARS = 700

# A line that is page furniture, not a title: arXiv stamps, dates, DOIs, page numbers.
_FURNITURE = re.compile(
    r"arxiv:|doi[:\s]|issn|isbn|https?://|www\.|^\s*\d{1,4}\s*$|^\s*(?:vol|no)\.|"
    r"\d{4},\s*\d+\s*\(\d+\)|published|received|accepted|journal|收稿|录用|引用|期刊",
    re.I,
)
# Where the author block ends: the abstract, keywords, or the body.
_BLOCK_END = re.compile(r"abstract|摘\s*要|关键词|key\s*words|introduction|引\s*言", re.I)
_AFFILIATION = re.compile(
    r"universit|institut|college|laborator|school of|department|research|inc\.|corp|"
    r"大学|学院|研究所|研究院|实验室|公司|中心",
    re.I,
)
_ABSTRACT_HEAD = re.compile(r"^\s*(?:abstract|摘\s*要)\s*[:：]?\s*", re.I)
_VENUE = re.compile(
    r"(\d+(?:st|nd|rd|th)\s+(?:Annual\s+)?Conference on [^\n()]{5,80}\([A-Za-z\- ]+\d{4}\))"
    r"|(Proceedings of [^\n]{5,90}\d{4})"
    r"|\b((?:NeurIPS|NIPS|ICML|ICLR|ACL|EMNLP|NAACL|CVPR|ICCV|ECCV|AAAI|IJCAI|KDD|SIGIR|WWW)"
    r"\s*['’]?\s*\d{2,4})\b"
)
_EN_HEADING = re.compile(r"^(\d{1,2}(?:\.\d{1,2}){0,2})\.?\s+([A-Z][A-Za-z][^\n]{2,70})$")
_ZH_HEADING = re.compile(
    r"^((?:[一二三四五六七八九十]+、)|(?:\d{1,2}(?:\.\d{1,2})*\s*))([\u4e00-\u9fff][^\n]{1,30})$"
)
_ACRONYM = re.compile(r"\b([A-Z][A-Z0-9]{1,7}(?:-[A-Z0-9]+)?)\b")
_NAME_MARKS = re.compile(r"[∗*†‡§¶#⋆♠♣♦♥0-9]+")


@dataclass(frozen=True, slots=True)
class BriefFact:
    """One fact about a user file, with the passage it was read from."""

    label: str
    """title, authors, affiliation, venue, abstract, headings, slides, schema,
    screen, speech, text"""
    text: str
    evidence: Evidence


@dataclass
class FileBrief:
    source: Source
    title: str
    facts: list[BriefFact] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    """Words from the file itself (title, headings, slide titles, acronyms) to search with."""
    language: str = ""
    problem: str | None = None
    """Why the file could not be understood offline, with what would fix it."""

    @property
    def kind(self) -> str:
        return self.source.kind

    def fact(self, label: str) -> BriefFact | None:
        return next((f for f in self.facts if f.label == label), None)

    @property
    def evidence(self) -> list[Evidence]:
        return list({f.evidence.id: f.evidence for f in self.facts}.values())


@dataclass
class MaterialBrief:
    files: list[FileBrief]
    collections: list[str]
    """Paths of the background collections (web pages)."""

    @property
    def readable(self) -> list[FileBrief]:
        return [f for f in self.files if f.problem is None and f.facts]

    @property
    def unreadable(self) -> list[FileBrief]:
        return [f for f in self.files if f.problem is not None]

    @property
    def evidence(self) -> list[Evidence]:
        """What the model may cite from the brief: the readable files' facts, and the
        descriptions the task supplied of files it could not read."""
        described = [f.fact("supplied") for f in self.unreadable]
        return [e for f in self.readable for e in f.evidence] + [
            fact.evidence for fact in described if fact is not None
        ]

    def main_file(self) -> FileBrief | None:
        """The file the report is most likely about: a document before media before
        the rest; the longest of its kind."""
        order = {"pdf": 0, "docx": 0, "pptx": 1, "video": 2, "audio": 3, "sheet": 4}
        ranked = sorted(
            self.readable, key=lambda f: (order.get(f.kind, 5), -len(f.facts), f.source.id)
        )
        return ranked[0] if ranked else None

    def render(self, language: str, *, with_ids: bool = True, max_chars: int = 3000) -> str:
        """The brief as the model reads it: one block per file, each fact with its
        citation (and evidence id, which the model may cite)."""
        zh = language.startswith("zh")
        names = _LABELS_ZH if zh else _LABELS_EN
        blocks: list[str] = []
        for f in self.files:
            head = f"- {f.source.display_name} ({f.kind})"
            if f.kind == SUPPLIED_KIND:
                head = f"- {f.source.display_name} (" + (
                    "不在文件夹中)" if zh else "not in the folder)"
                )
            facts = f.facts
            if f.problem:
                head = f"{head}: {f.problem}"
                facts = [fact for fact in f.facts if fact.label == "supplied"]
            lines = [head]
            for fact in facts:
                ref = f" [{fact.evidence.id}]" if with_ids else ""
                ref += f" ({fact.evidence.citation_label(language)})"
                lines.append(f"  {names.get(fact.label, fact.label)}: {fact.text}{ref}")
            blocks.append("\n".join(lines))
        if self.collections:
            label = "背景网页集合" if zh else "Background web-page collections"
            blocks.append(f"- {label}: " + ", ".join(self.collections))
        text = "\n".join(blocks)
        return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


_LABELS_EN = {
    "title": "Title",
    "authors": "Authors",
    "affiliation": "Affiliation",
    "venue": "Venue",
    "abstract": "Abstract",
    "headings": "Section headings",
    "slides": "Slide titles",
    "schema": "Columns",
    "screen": "On-screen titles",
    "speech": "Speech (opening)",
    "text": "Opening text",
    "supplied": "Description supplied with the task (not read from the file)",
}
_LABELS_ZH = {
    "title": "标题",
    "authors": "作者",
    "affiliation": "单位",
    "venue": "发表",
    "abstract": "摘要",
    "headings": "章节标题",
    "slides": "幻灯片标题",
    "schema": "数据列",
    "screen": "画面文字（标题）",
    "speech": "语音（开头）",
    "text": "开头文字",
    "supplied": "任务提供的描述（并非读自文件）",
}


def build_brief(index: Index, *, vision_available: bool = False) -> MaterialBrief:
    """The brief of every user file in ``index`` (collections are only named)."""
    files: list[FileBrief] = []
    collections: set[str] = set()
    for source in sorted(index.sources(), key=lambda s: s.id):
        if source.kind == "article":
            collections.add(source.path)
            continue
        if source.kind in {"figure", "analysis"}:
            continue
        segments = index.segments_of(source.id)
        files.append(brief_file(source, segments, vision_available=vision_available))
    return MaterialBrief(files, sorted(collections))


def brief_file(
    source: Source, segments: list[Segment], *, vision_available: bool = False
) -> FileBrief:
    builder = _BUILDERS.get(source.kind, _brief_text)
    brief = builder(source, segments)
    text = " ".join(s.text for s in segments[:20])
    brief.language = "zh" if cjk_ratio(text) > 0.5 else ("en" if text.strip() else "")
    if not brief.facts and brief.problem is None:
        brief.problem = _unreadable_reason(source, vision_available)
    brief.terms = _dedupe([t for t in brief.terms if t and not PLACEHOLDER.search(t)])[:12]
    return brief


def _unreadable_reason(source: Source, vision_available: bool) -> str:
    if source.kind == "image":
        if vision_available:
            return "no text in the image; ask inspect_image about what it shows"
        return (
            "no text in the image and no vision model configured: its content cannot be "
            "read offline (set --vision-model provider:model to describe images)"
        )
    if source.kind in MEDIA_KINDS:
        return "no speech, subtitles or on-screen text could be extracted"
    return "no text could be extracted"


# --- per kind ---------------------------------------------------------------------------


def _ev(source: Source, segment: Segment) -> Evidence:
    return Evidence(segment, source)


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def _brief_pdf(source: Source, segments: list[Segment]) -> FileBrief:
    brief = FileBrief(source, source.title)
    if not segments:
        return brief
    page = [s for s in segments if s.locator.page == segments[0].locator.page] or segments[:1]
    text, spans = page_text(page)

    def where(fragment: str) -> Segment:
        pos = text.find(fragment[:40])
        return next((seg for lo, hi, seg in spans if lo <= pos < hi), page[0])

    lines = _lines(text)
    meta_title = source.title if source.title and source.title != _stem(source.path) else ""
    meta_title = re.sub(r"[\s_\-]*(?:final|draft|v\d+)$", "", meta_title, flags=re.I)
    if meta_title.lower().startswith(("microsoft word", "untitled")) or meta_title.endswith(
        (".doc", ".docx")
    ):
        meta_title = ""
    title, rest = _title_from_lines(lines)
    title = meta_title or title or _stem(source.path)
    brief.title = title
    if not PLACEHOLDER.search(title):
        brief.facts.append(BriefFact("title", title, _ev(source, where(title.split(":")[0]))))
    authors, affiliations = _authors(rest)
    if authors:
        brief.facts.append(BriefFact("authors", ", ".join(authors), _ev(source, where(authors[0]))))
    if affiliations:
        brief.facts.append(
            BriefFact(
                "affiliation", "; ".join(affiliations[:3]), _ev(source, where(affiliations[0]))
            )
        )
    for seg in segments[:12]:
        m = _VENUE.search(seg.text.replace("\n", " "))
        if m:
            venue = next(g for g in m.groups() if g)
            brief.facts.append(BriefFact("venue", " ".join(venue.split()), _ev(source, seg)))
            break
    abstract = ""
    m = (re.search(r"摘\s*要\s*[:：]?\s*", text) if cjk_ratio(text) > 0.3 else None) or re.search(
        r"(?:^|\n)\s*(?:Abstract|ABSTRACT)\s*[:：.]?\s*", text
    )
    if m:
        abstract = _clip(" ".join(text[m.end() :].split()), ABSTRACT_CHARS)
        if abstract:
            brief.facts.append(
                BriefFact("abstract", abstract, _ev(source, where(text[m.end() : m.end() + 40])))
            )
    headings = _headings(segments)
    if headings:
        brief.facts.append(
            BriefFact("headings", "; ".join(h for h, _ in headings), _ev(source, headings[0][1]))
        )
    opening = text[m.end() : m.end() + 1600] if m else text[:1600]
    brief.terms = [
        *_acronyms(opening),
        *_title_terms(title),
        *[h.split(" ", 1)[-1] for h, _ in headings[:8]],
    ]
    return brief


def page_text(segments: list[Segment]) -> tuple[str, list[tuple[int, int, Segment]]]:
    """The text of consecutive, possibly overlapping chunks of one page, joined once,
    with the span of the joined text each chunk covers."""
    text = ""
    spans: list[tuple[int, int, Segment]] = []
    for seg in segments:
        lo = len(text)
        start = seg.locator.char_start
        prev_end = spans[-1][2].locator.char_end if spans else None
        if start is not None and prev_end is not None and start < prev_end:
            overlap = prev_end - start
            text += seg.text[overlap:]
            lo = max(0, lo - overlap)
        else:
            text += ("\n" if text else "") + seg.text
        spans.append((lo, len(text), seg))
    return text, spans


def _title_from_lines(lines: list[str]) -> tuple[str, list[str]]:
    """The first substantial line (joined with its continuation when it ends with a
    colon), and the lines after it."""
    for i, line in enumerate(lines[:12]):
        if _FURNITURE.search(line) or _ABSTRACT_HEAD.match(line) or _AFFILIATION.search(line):
            continue
        words = len(line.split())
        cjk = sum("\u4e00" <= ch <= "\u9fff" for ch in line)
        if words < 3 and cjk < 6:
            continue
        title, j = line, i + 1
        while j < len(lines) and title.rstrip().endswith((":", "：", "-", "—")) and j <= i + 2:
            title, j = f"{title.rstrip()} {lines[j]}", j + 1
        return title.strip(), lines[j:]
    return "", lines


def _authors(lines: list[str]) -> tuple[list[str], list[str]]:
    """Name lines and affiliation lines between the title and the abstract. Footnote
    marks (∗†‡, digits) separate names written on one line."""
    authors: list[str] = []
    affiliations: list[str] = []
    for line in lines[:20]:
        if _BLOCK_END.search(line) or len(line) > 90:
            break
        if "@" in line or _FURNITURE.search(line) or PLACEHOLDER.search(line):
            continue
        if _AFFILIATION.search(line):
            parts = [p.strip(" ,;") for p in _NAME_MARKS.split(line)]
            affiliations += [p for p in parts if p]
            continue
        if cjk_ratio(line) > 0.5:  # "王 田", "张三，李四"
            for name in re.split(r"[,，、;；|]|\s{2,}", _NAME_MARKS.sub("|", line)):
                name = "".join(name.split())
                if re.fullmatch(r"[\u4e00-\u9fff]{2,4}", name):
                    authors.append(name)
            continue
        for name in re.split(r"\s{2,}|[,，、;；|]|\band\b", _NAME_MARKS.sub("|", line)):
            name = " ".join(name.split())
            if _looks_like_name(name):
                authors.append(name)
            elif len(name.split()) in (4, 6, 8) and all(
                _looks_like_name(" ".join(p)) for p in _pairs(name)
            ):
                authors += [" ".join(p) for p in _pairs(name)]  # "Ann Lee Bo Chen"
    return _dedupe(authors)[:12], _dedupe(affiliations)


def _pairs(name: str) -> list[list[str]]:
    words = name.split()
    return [words[i : i + 2] for i in range(0, len(words), 2)]


def _looks_like_name(text: str) -> bool:
    parts = text.split()
    return 2 <= len(parts) <= 4 and all(re.fullmatch(r"[A-Z][a-zA-Z'\-]*\.?", p) for p in parts)


def _headings(segments: list[Segment]) -> list[tuple[str, Segment]]:
    found: list[tuple[str, Segment]] = []
    seen: set[str] = set()
    for s in segments:
        for line in _lines(s.text):
            m = _EN_HEADING.match(line) or _ZH_HEADING.match(line)
            if not m or line.endswith((".", "。", ",", "，")) or _FURNITURE.search(line):
                continue
            number, title = m.group(1).strip(), m.group(2).strip()
            if len(title.split()) > 10 or number.count(".") > 1 or title.lower() in seen:
                continue
            seen.add(title.lower())
            found.append((f"{number} {title}".strip(), s))
            if len(found) >= MAX_HEADINGS:
                return found
    return found


def _brief_slides(source: Source, segments: list[Segment]) -> FileBrief:
    brief = FileBrief(source, source.title)
    titles: list[tuple[str, Segment]] = []
    for s in segments:
        first = next((ln for ln in _lines(s.text) if not PLACEHOLDER.search(ln)), "")
        if first and first not in {t for t, _ in titles}:
            titles.append((_clip(first, 60), s))
    if titles:
        brief.title = titles[0][0] if source.title == _stem(source.path) else source.title
        brief.facts.append(BriefFact("title", brief.title, _ev(source, titles[0][1])))
        brief.facts.append(
            BriefFact(
                "slides",
                "; ".join(t for t, _ in titles[1:16]) or titles[0][0],
                _ev(source, titles[min(1, len(titles) - 1)][1]),
            )
        )
    brief.terms = [t for t, _ in titles[:8]]
    return brief


def _brief_sheet(source: Source, segments: list[Segment]) -> FileBrief:
    brief = FileBrief(source, source.title or source.display_name)
    schema = [s for s in segments if s.locator.section == "schema"] or segments[:1]
    for s in schema[:3]:
        brief.facts.append(
            BriefFact("schema", _clip(" ".join(s.text.split()), 400), _ev(source, s))
        )
    columns = re.findall(r"^\s*[-•]?\s*([^:\n]{1,40}):", "\n".join(s.text for s in schema), re.M)
    brief.terms = [source.display_name.rsplit(".", 1)[0], *columns[1:8]]
    return brief


def _brief_media(source: Source, segments: list[Segment]) -> FileBrief:
    brief = FileBrief(source, source.title or source.display_name)
    screens: list[tuple[str, Segment]] = []
    speech: list[tuple[str, Segment]] = []
    for s in segments:
        for line in _lines(s.text):
            if line.startswith("screen: "):
                first = line[len("screen: ") :].split(" / ")[0].strip()
                if first and first not in {t for t, _ in screens} and not PLACEHOLDER.search(first):
                    screens.append((_clip(first, 80), s))
            elif line.startswith(("speech: ", "subtitle: ")) and len(speech) < 3:
                speech.append((line.split(": ", 1)[1].strip(), s))
    if screens:
        brief.facts.append(
            BriefFact(
                "screen",
                "; ".join(f"{t} ({_at(seg)})" for t, seg in screens[:12]),
                _ev(source, screens[0][1]),
            )
        )
    for text, seg in speech[:2]:
        brief.facts.append(BriefFact("speech", _clip(text, 300), _ev(source, seg)))
    brief.terms = [t for t, _ in screens[:8]]
    return brief


def _brief_image(source: Source, segments: list[Segment]) -> FileBrief:
    brief = FileBrief(source, source.title or source.display_name)
    texts = [s for s in segments if s.locator.section != "image metadata" and s.text.strip()]
    if texts:
        brief.facts.append(
            BriefFact("text", _clip(" ".join(texts[0].text.split()), 300), _ev(source, texts[0]))
        )
        brief.terms = [ln for ln in _lines(texts[0].text)[:3]]
    return brief


def _brief_text(source: Source, segments: list[Segment]) -> FileBrief:
    brief = FileBrief(source, source.title or source.display_name)
    if not segments:
        return brief
    lines = _lines(segments[0].text)
    title = source.title if source.title and source.title != _stem(source.path) else ""
    if not title and lines:
        title = lines[0].lstrip("#").strip()
    brief.title = _clip(title, 100) or source.display_name
    brief.facts.append(BriefFact("title", brief.title, _ev(source, segments[0])))
    opening = " ".join(" ".join(lines[1:]).split())
    if opening:
        brief.facts.append(BriefFact("text", _clip(opening, 400), _ev(source, segments[0])))
    headings = _headings(segments)
    if headings:
        brief.facts.append(
            BriefFact("headings", "; ".join(h for h, _ in headings), _ev(source, headings[0][1]))
        )
    brief.terms = [*_title_terms(brief.title), *[h for h, _ in headings[:6]]]
    return brief


_BUILDERS = {
    "pdf": _brief_pdf,
    "pptx": _brief_slides,
    "sheet": _brief_sheet,
    "video": _brief_media,
    "audio": _brief_media,
    "image": _brief_image,
}


# --- small helpers ------------------------------------------------------------------------


def _at(segment: Segment) -> str:
    return segment.locator.label("en")


def _stem(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[:chars].rstrip() + "…"


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(i.strip() for i in items if i.strip()))


def _title_terms(title: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"[:：—]", title) if len(p.strip()) >= 4]
    return [title, *parts] if len(parts) > 1 else [title]


def _acronyms(text: str) -> list[str]:
    counts = Counter(m for m in _ACRONYM.findall(text) if m not in {"LM", "LMS", "AI", "IT", "OK"})
    return [a for a, _ in counts.most_common(4)]
