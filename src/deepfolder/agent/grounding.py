"""Which of the user's files a section is about, and what to search them with.

The pipeline used to search with a section's title ("论文基本信息", "关键技术解析"): in a
folder that also holds thousands of web pages, that finds pages about *writing reading
reports*. Here the search is decided from the material: a section about "the video" is
scoped to the video, a section about "the paper" to the paper; its queries are made of
the file's own words (its title, acronyms, headings, slide titles) plus, for a source in
another language than the request, the section's intent in that language (a Chinese
"关键技术" over an English paper searches "method objective derivation"); and when the
request builds on the material it provides, the user's files are the primary sources of
every section — web pages only support.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from deepfolder.agent.attach import SENTENCE_RE
from deepfolder.agent.brief import FileBrief, MaterialBrief
from deepfolder.prompts.writing import IDENTITY_STATED_EN, IDENTITY_STATED_ZH
from deepfolder.records import Evidence
from deepfolder.request_model import material_kinds_named
from deepfolder.validate.grounding import MATERIAL_KIND

MATERIAL_NAMES_ZH = {
    "paper": "论文",
    "document": "文档",
    "video": "视频",
    "audio": "音频",
    "slides": "幻灯片",
    "data": "数据表",
    "image": "图片",
}


def source_kinds(group: str) -> set[str]:
    """The kinds of source that hold material of ``group`` (a paper may be a PDF or a
    Word file; a video has audio)."""
    groups = {"paper", "document"} if group in {"paper", "document"} else {group}
    kinds = {kind for kind, g in MATERIAL_KIND.items() if g in groups}
    return kinds | ({"video"} if group == "audio" else set())


@dataclass(frozen=True, slots=True)
class Intent:
    """What kind of section this is, and how its content is named in English papers."""

    name: str
    words: tuple[str, ...]
    english: str
    heading_words: tuple[str, ...] = ()


INTENTS = (
    Intent(
        "basic",
        (
            "基本信息",
            "基本情况",
            "概况",
            "文献信息",
            "basic information",
            "bibliographic",
            "overview",
        ),
        "title authors affiliation conference",
    ),
    Intent(
        "summary",
        ("摘要", "概述", "核心内容", "主要内容", "内容概要", "summary", "abstract", "synopsis"),
        "abstract we propose contributions conclusion",
        ("introduction", "conclusion"),
    ),
    Intent(
        "method",
        (
            "技术",
            "方法",
            "算法",
            "原理",
            "模型",
            "机制",
            "method",
            "technique",
            "approach",
            "algorithm",
        ),
        "method objective loss derivation algorithm",
        ("method", "approach", "algorithm", "derivation", "objective", "model", "framework"),
    ),
    Intent(
        "results",
        (
            "实验",
            "结果",
            "评估",
            "性能",
            "效果",
            "experiment",
            "result",
            "evaluation",
            "performance",
        ),
        "experiments results evaluation win rate outperforms",
        ("experiment", "result", "evaluation", "benchmark"),
    ),
    Intent(
        "limits",
        ("局限", "不足", "展望", "未来", "挑战", "limitation", "future", "challenge"),
        "limitations future work discussion",
        ("discussion", "limitation", "future"),
    ),
    Intent(
        "conclusion",
        ("结论", "总结", "启示", "conclusion", "takeaway"),
        "conclusion we showed",
        ("conclusion",),
    ),
)


def named_groups(title: str) -> set[str]:
    """The kinds of material a section title names ("视频补充内容" → video); "报告"
    in a title names the report itself, not a document."""
    return set(material_kinds_named(title)) - {"document"}


def missing_material(provided: Iterable[str], brief: MaterialBrief) -> list[str]:
    """The kinds of material the request says it provides (``RequestConstraints.
    material_kinds``) that the folder does not hold readably."""
    have = {f.kind for f in brief.readable}
    return sorted({g for g in provided if not have & source_kinds(g)})


def section_scope(
    title: str, brief: MaterialBrief, others: list[str] | tuple[str, ...] = ()
) -> list[FileBrief]:
    """The user files a section is about: those of the kinds its title names; else all,
    less the files another section of the report is about ("视频补充内容" has the video,
    so "核心内容摘要" is about the paper)."""
    named = named_groups(title)
    if named:
        kinds = set().union(*(source_kinds(g) for g in named))
        scoped = [f for f in brief.readable if f.kind in kinds]
        return scoped or ([] if _only_named(title) else brief.readable)
    taken = set().union(*(source_kinds(g) for t in others for g in named_groups(t) & SOLE_SUBJECT))
    return [f for f in brief.readable if f.kind not in taken] or brief.readable


SOLE_SUBJECT = {"video", "audio", "image", "slides"}
"""Material a section that names it is about, alone ("视频补充内容")."""


def _only_named(title: str) -> bool:
    return bool(named_groups(title) & SOLE_SUBJECT)


def section_intent(title: str) -> Intent | None:
    low = title.lower()
    return next((i for i in INTENTS if any(w in low for w in i.words)), None)


def section_queries(title: str, files: list[FileBrief], request_language: str) -> list[str]:
    """Queries in the files' own words for a section about ``files``."""
    intent = section_intent(title)
    queries: list[str] = []
    for f in files[:3]:
        short = re.split(r"[:：]", f.title)[0].strip() if f.title else ""
        acronyms = [t for t in f.terms if re.fullmatch(r"[A-Z][A-Z0-9\-]{1,7}", t)]
        head = " ".join([short, *acronyms[:2]]).strip()
        other_language = f.language and f.language != request_language[:2]
        if intent is not None:
            if other_language or f.language == "en":
                queries.append(f"{head} {intent.english}".strip())
            headings = [t for t in f.terms if any(w in t.lower() for w in intent.heading_words)]
            queries += headings[:2]
        if not other_language:
            queries.append(f"{short} {title}".strip())
        if f.kind in {"video", "audio", "pptx"}:
            queries += related_terms(title, f.terms)
        elif head:
            queries.append(head)
    return list(dict.fromkeys(q for q in queries if q.strip()))[:6]


GENERIC_TERMS = re.compile(
    r"^\s*(目录|目 录|contents|table of contents|agenda|outline|谢谢(观看|聆听)?|"
    r"thank you|thanks|q\s*&\s*a|questions)\b",
    re.IGNORECASE,
)
"""Slide titles that name no content: the table of contents, the closing slide."""


def _bigrams(text: str) -> set[str]:
    low = re.sub(r"[\s\W_]+", "", text.lower())
    return {low[i : i + 2] for i in range(len(low) - 1)}


def related_terms(title: str, terms: list[str], n: int = 3) -> list[str]:
    """The slide titles of a deck or talk that a section is about: those sharing words
    with the section's title ("典型案例分析" for "直播带货行业的典型案例分析"), best first;
    the first ones when none does (a "视频补充内容" section is about the whole talk).
    The table of contents and the closing slide are never queries: every section would
    find them."""
    useful = [t for t in terms if not GENERIC_TERMS.match(t)]
    wanted = _bigrams(title)
    scored = sorted(
        ((len(_bigrams(t) & wanted), i, t) for i, t in enumerate(useful)),
        key=lambda x: (-x[0], x[1]),
    )
    related = [t for score, _, t in scored if score > 0][:n]
    return related or useful[:n]


HEADING_ONLY_CHARS = 40
"""A passage with less text than this (non-space characters; 8 words of English) is a
heading, a divider slide or a table-of-contents line: a section written from it says
nothing of its own."""


def is_heading_only(ev: Evidence) -> bool:
    """A divider slide ("司法实践 典型案例与责任认定标准"), a contents page or a bare title:
    nothing to write from. Computed results and the brief's facts are never this."""
    if ev.source.kind in {"analysis", "figure"}:
        return False
    text = ev.segment.text
    if re.search(r"(目\s*录|contents)", text[:40], re.IGNORECASE) and (
        re.search(r"[.…·]{4,}", text) or len(text) < 200
    ):
        return True
    if len(re.findall(r"[.…·]{4,}\s*\d+", text)) >= 3:  # a contents page without its heading
        return True
    if re.search(r"[\u4e00-\u9fff]", text):
        return len(re.sub(r"\s", "", text)) < HEADING_ONLY_CHARS
    return len(text.split()) < 8


def with_content(evidence: list[Evidence]) -> list[Evidence]:
    """``evidence`` less its heading-only passages, unless that leaves nothing."""
    kept = [e for e in evidence if not is_heading_only(e)]
    return kept or evidence


FINDING_LINE = re.compile(r"r = [+-]\d\.\d\d|由 .+ 变为 .+（|went from .+ to .+ \(")
"""A computed result's lines that state a finding: a correlation with its strength, a
change over a period (``auto_analysis``'s wording)."""


def computed_lead(evidence: list[Evidence], language: str) -> str | None:
    """The first finding line of the first computed result in ``evidence`` (the
    strongest correlation with the outcome, the change over the period), as a cited
    sentence; None when no computed result states one."""
    for ev in evidence:
        if ev.source.kind != "analysis":
            continue
        for line in ev.segment.text.splitlines():
            line = " ".join(line.split()).rstrip("。.;；:：")
            if FINDING_LINE.search(line):
                if language.startswith("zh"):
                    return f"数据分析显示，{line}[{ev.id}]。"
                return f"The analysis of the data shows: {line}[{ev.id}]."
    return None


INTENT_FACTS = {
    "basic": ("venue", "abstract"),
    "summary": ("abstract", "headings", "slides", "screen"),
}


def intent_facts(title: str, files: list[FileBrief]) -> list[Evidence]:
    """The brief's passages a section of this intent starts from: a basic-information
    section the first page (title, authors, venue), a summary the abstract."""
    intent = section_intent(title)
    labels = INTENT_FACTS.get(intent.name, ()) if intent else ()
    found = [f.evidence for file in files[:2] for f in file.facts if f.label in labels]
    return list({e.id: e for e in found}.values())


def choose_evidence(
    user: list[Evidence],
    background: list[Evidence],
    want: int,
    *,
    used: set[str],
    primary: bool,
    outside: bool,
) -> list[Evidence]:
    """The passages a section is written from, best first.

    Passages no earlier section was given come first (a small model copies what it is
    shown, so a passage shown twice is written twice): the user's files, then web pages
    — only a few when the request builds on the user's files, or a little more when it
    also asks for outside material. A section still cites the user's files when all of
    their passages went to earlier sections: one of them closes the list.
    """
    fresh_user = [e for e in user if e.id not in used]
    fresh_web = [e for e in background if e.id not in used]
    if primary:
        chosen = fresh_user[:want]
        room = max(want - len(chosen), 2 if outside else 0)
    else:
        chosen = fresh_user[: max(2, want // 2)]
        room = want - len(chosen)
    if user and not chosen:
        room -= 1  # the place of the user's passage that closes the list
    chosen += fresh_web[: max(0, room)]
    if user and not any(e.source.is_user_material for e in chosen):
        chosen.append(user[0])
    if len(chosen) < min(3, want):  # a folder too small to share out: repeat rather than starve
        chosen += [e for e in [*user, *background] if e not in chosen][: min(3, want) - len(chosen)]
    return chosen


SUBJECT_KINDS = {"pdf", "docx", "pptx", "video", "audio"}
"""Files whose subject can be named: a paper, a deck, a talk (a sheet's columns cannot)."""


def subject_terms(files: list[FileBrief]) -> list[str]:
    """Words that name what ``files`` are about: their titles (the part before a colon
    too) and their acronyms ("DPO", "RLHF")."""
    terms: list[str] = []
    for f in files:
        if f.kind not in SUBJECT_KINDS:
            continue
        if f.title and f.title != f.source.display_name:
            terms += [f.title, re.split(r"[:：]", f.title)[0].strip()]
        terms += [t for t in f.terms if re.fullmatch(r"[A-Z][A-Z0-9\-]{1,7}", t)]
    return [t for t in dict.fromkeys(terms) if len(t) >= 2]


def on_subject(evidence: list[Evidence], files: list[FileBrief]) -> list[Evidence]:
    """The web pages among ``evidence`` that name the subject of ``files`` — a section
    about the user's paper is supported by pages about that paper, not by whatever
    matched its generic words (run E's 关键技术解析 drew on a page about 职业弹幕人).
    Files without a nameable subject (sheets) filter nothing."""
    terms = subject_terms(files)
    if not terms:
        return evidence
    latin = [t.lower() for t in terms if t.isascii()]
    other = [t for t in terms if not t.isascii()]

    def names(text: str) -> bool:
        low = text.lower()
        return any(
            re.search(rf"(?<![A-Za-z]){re.escape(t)}(?![A-Za-z])", low) for t in latin
        ) or any(t in text for t in other)

    return [e for e in evidence if names(e.segment.text)]


_BIBLIOGRAPHY = re.compile(
    r"arXiv(?: preprint)?|Proceedings of|In Advances in|Conference on|Journal of|\bpp\.\s*\d|"
    r"\bvol\.|doi\.org|, (?:19|20)\d{2}\.|\[J\]|\[C\]|\[M\]"
)


def looks_like_bibliography(text: str) -> bool:
    """A passage of a reference list: several citation markers in a few hundred
    characters. Its titles and names are not findings of the paper."""
    return len(_BIBLIOGRAPHY.findall(text)) >= max(4, len(text) // 150)


def asks_for_outside_material(request: str) -> bool:
    return bool(
        re.search(
            r"结合|公开|案例|外部|网络资料|权威数据|public|external|case stud|web", request, re.I
        )
    )


def identity_sentence(file: FileBrief, language: str) -> tuple[str, list[Evidence]] | None:
    """A sentence stating the file's title, authors and venue, built from its brief,
    with the passages those facts are on."""
    title = file.fact("title")
    if title is None:
        return None
    authors, venue, aff = file.fact("authors"), file.fact("venue"), file.fact("affiliation")
    zh = language.startswith("zh")
    if zh:
        text = f"本报告解读的{_noun_zh(file)}为《{title.text}》"
        if authors:
            text += f"，作者为{authors.text.replace(', ', '、')}"
        if aff:
            text += f"（{aff.text}）"
        if venue:
            text += f"，发表于{venue.text}"
        text += "。"
    else:
        text = f"The {_noun_en(file)} discussed here is “{title.text}”"
        if authors:
            text += f" by {authors.text}"
        if aff:
            text += f" ({aff.text})"
        if venue:
            text += f", published at {venue.text}"
        text += "."
    used = [f.evidence for f in (title, authors, aff, venue) if f is not None]
    return text, list({e.id: e for e in used}.values())


def _noun_zh(file: FileBrief) -> str:
    return {"pdf": "论文", "docx": "文档", "pptx": "幻灯片", "video": "视频"}.get(file.kind, "材料")


def _noun_en(file: FileBrief) -> str:
    return {"pdf": "paper", "docx": "document", "pptx": "slide deck", "video": "video"}.get(
        file.kind, "material"
    )


def no_evidence_text(title: str, brief: MaterialBrief | None, language: str) -> str:
    """What a section says when nothing was found for it — naming the material the
    section is about when the folder lacks it, never template prose."""
    zh = language.startswith("zh")
    named = named_groups(title)
    if named and brief is not None and not section_scope(title, brief):
        if zh:
            what = "、".join(MATERIAL_NAMES_ZH[g] for g in sorted(named))
            return f"（文件夹中没有可读取的{what}，本节无法依据用户材料撰写。）"
        return (
            f"(The folder holds no readable {', '.join(sorted(named))}; this section cannot "
            "be written from the user's material.)"
        )
    if zh:
        return "（未在资料中检索到本节的相关证据。）"
    return "(No evidence for this section was found in the folder.)"


def state_identity(
    title: str, text: str, brief: MaterialBrief, language: str
) -> tuple[str, list[Evidence]]:
    """A section giving a file's basic information opens with its real title, authors
    and venue, from the brief, cited to the passages they are on (the small model
    garbles or embellishes them). Returns the text and the evidence cited."""
    intent = section_intent(title)
    if intent is None or intent.name != "basic":
        return text, []
    scope = section_scope(title, brief)
    file = next((f for f in scope if f.kind in {"pdf", "docx", "pptx"}), None)
    made = identity_sentence(file, language) if file is not None else None
    if file is None or made is None:
        return text, []
    sentence, cited = made
    ids = "".join(f"[{e.id}]" for e in cited)
    text = without_identity_restatements(text, file)
    return f"{sentence[:-1]}{ids}{sentence[-1]}\n\n{text}".strip(), cited


_RESTATES = re.compile(
    r"本报告解读|作者(?:为|是|包括|分别为)|arXiv|共同贡献|同等贡献|equal contribution|author(?:s are| is)|authors include|written by",
    re.I,
)
_TRANSLITERATED = re.compile(r"[\u4e00-\u9fff]{1,5}·[\u4e00-\u9fff]{1,6}")
_SENTENCE_END = re.compile(r"[。！？!?.]\s*(?:\[E[0-9a-f]{8}\])*\s*$")


def without_identity_restatements(text: str, file: FileBrief) -> str:
    """A basic-information section's model-written text less what restates the identity
    the code states: the small model copies the title (translated), lists the authors
    (transliterated: "克里斯蒂安·曼内尔"), the arXiv line, and headline-like lines."""
    authors = file.fact("authors")
    surnames = (
        {n.split()[-1].strip("∗*†") for n in re.split(r",\s*|、", authors.text) if n.split()}
        if authors
        else set()
    )
    title = file.fact("title")
    # the whole title: its first words are often the method's name ("Direct Preference
    # Optimization"), which the section's sentences rightly use
    head = title.text.lower() if title and len(title.text) >= 20 else ""

    def restates(sentence: str) -> bool:
        named = sum(1 for n in surnames if len(n) > 2 and n in sentence)
        return bool(
            _RESTATES.search(sentence)
            or named >= 2
            or len(_TRANSLITERATED.findall(sentence)) >= 2
            or (head and head in sentence.lower())
        )

    lines = []
    for line in text.splitlines():
        if line.strip() and not _SENTENCE_END.search(line) and not line.lstrip().startswith("!"):
            continue  # a headline (a translated title), not prose
        kept = "".join(m.group(0) for m in SENTENCE_RE.finditer(line) if not restates(m.group(0)))
        if kept.strip() or not line.strip():
            lines.append(kept.strip() if line.strip() else "")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def section_notes(title: str, brief: MaterialBrief | None, language: str) -> list[str]:
    """What the writer of a section is told beyond its budget: a basic-information
    section's identity (title, authors, venue) is written in code, so the model writes
    about the work itself instead of listing (and embellishing) names."""
    if not identity_stated(title, brief):
        return []
    return [IDENTITY_STATED_ZH if language.startswith("zh") else IDENTITY_STATED_EN]


def identity_stated(title: str, brief: MaterialBrief | None) -> bool:
    """The section gives a file's basic information, and code states its identity
    (``state_identity``): the model writes about the work, under another heading
    (told "论文基本信息", the small model lists title and authors whatever it is told)."""
    intent = section_intent(title)
    if brief is None or intent is None or intent.name != "basic":
        return False
    return any(f.fact("title") for f in section_scope(title, brief))


def material_notes(
    provided: Iterable[str], brief: MaterialBrief | None, language: str
) -> list[str]:
    """What the report must say it could not use: material the request builds on that
    the folder lacks, and user files that cannot be understood offline."""
    if brief is None:
        return []
    zh = language.startswith("zh")
    notes = missing_notes(provided, brief, language)
    for f in brief.unreadable:
        name = f.source.display_name
        notes.append(
            f"{name} 无法离线读取：{f.problem}。"
            if zh
            else f"{name} could not be read offline: {f.problem}."
        )
    return notes


def missing_notes(provided: Iterable[str], brief: MaterialBrief, language: str) -> list[str]:
    """The note on the material the request builds on that the folder lacks (none when
    it lacks nothing)."""
    missing = missing_material(provided, brief)
    if not missing:
        return []
    if language.startswith("zh"):
        what = "、".join(MATERIAL_NAMES_ZH[g] for g in missing)
        return [f"请求提到的{what}不在所给文件夹中（或无法读取），本报告未能依据它撰写。"]
    return [
        f"The request refers to {', '.join(missing)} that the folder does not hold "
        "(or that could not be read); the report could not draw on it."
    ]
