"""The request model: the checkable constraints read out of a request, in Chinese or
English (:func:`parse_request` → :class:`RequestConstraints`).

The runner, the agent, the tools and the validator all read the request from here; like
``records.py`` this module imports nothing else of ours.

What is read (and nothing else — a constraint the code cannot check is not invented):

- length: ranges and bounds in 字 or words (``2000至3000字``, ``不少于800字``,
  ``1500字左右`` = ±10 %, ``between 800 and 1000 words``…);
- required sections: a numbered list (``（1）引言；（2）…``, ``1. …``, ``一、…``) or a
  colon list after ``包含以下章节：`` / ``include sections:``;
- format (HTML or Markdown), style flags (``不要分点`` → no bullet lists), language,
  whether figures are asked for, the report title in ``《…》``.

Length patterns need a unit (``字`` / ``words``) or, for a bare range such as
``1500至2000之间``, a length word (``字数``, ``篇幅``, ``全文``…) shortly before it: a request
that mentions ``2023至2025年`` must not become a length rule.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Unit = Literal["字", "words"]

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6}
_CN_DIGITS |= {"七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}

# A number as requests write it: 2000 / 2,000 / 1.5万 / 3千 / 两千 / 一千五百.
NUMBER = r"(?:\d[\d,，]*(?:\.\d+)?\s*[千万kK]?|[零〇一二两三四五六七八九十百千万]{1,8})"
RANGE_SEP = r"\s*(?:至|到|-|－|–|—|~|～|〜)\s*"


def parse_number(text: str) -> int | None:
    """``"2,000"`` → 2000, ``"1.5万"`` → 15000, ``"两千五百"`` → 2500; None if not a number."""
    s = text.strip().replace(",", "").replace("，", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([千万kK]?)", s)
    if m:
        mult = {"": 1, "千": 1000, "k": 1000, "K": 1000, "万": 10000}[m.group(2)]
        return round(float(m.group(1)) * mult)
    if not s or any(ch not in _CN_DIGITS and ch not in _CN_UNITS for ch in s):
        return None
    total, section, digit = 0, 0, None
    for ch in s:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
            continue
        unit = _CN_UNITS[ch]
        if unit == 10000:
            total += (section + (digit or 0)) * unit
            section = 0
        else:
            section += (1 if digit is None else digit) * unit
        digit = None
    return total + section + (digit or 0)


@dataclass(frozen=True, slots=True)
class LengthRule:
    min: int | None
    max: int | None
    unit: Unit
    source: str
    """The words of the request the rule was read from, e.g. ``字数在800-1000字``."""

    def contains(self, value: int) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    @property
    def target(self) -> int:
        """The length to aim for when revising: the middle of the range."""
        if self.min is not None and self.max is not None:
            return (self.min + self.max) // 2
        if self.min is not None:
            return round(self.min * 1.1)
        assert self.max is not None
        return round(self.max * 0.9)

    def describe(self) -> str:
        unit = " 字" if self.unit == "字" else " words"
        if self.min is not None and self.max is not None:
            return f"{self.min}–{self.max}{unit}"
        if self.min is not None:
            return f"≥ {self.min}{unit}"
        return f"≤ {self.max}{unit}"


@dataclass(frozen=True, slots=True)
class RequiredSection:
    label: str
    """The numbering as written in the request (``（1）``, ``1.``, ``一、``), or ``""``."""
    title: str
    order: int
    """1-based position in the request's list."""
    note: str = ""
    """A trailing explanation the request gave in parentheses (``需要在一页内概括…``)."""

    @property
    def is_title(self) -> bool:
        """A "section" that is the report's title itself (``（1）报告标题``)."""
        return re.fullmatch(r"(报告)?(标题|题目)|(report )?title", self.title, re.I) is not None

    @property
    def display(self) -> str:
        return f"{self.label}{self.title}"


@dataclass(slots=True)
class RequestConstraints:
    length: LengthRule | None = None
    sections: list[RequiredSection] = field(default_factory=list)
    format: Literal["markdown", "html"] = "markdown"
    language: Literal["zh", "en"] = "zh"
    no_bullets: bool = False
    no_tables: bool = False
    wants_figures: bool = False
    reference_section: str | None = None
    """Title of a required reference section (``参考资料``), when the request asks for one."""
    title: str | None = None
    """The report title the request names in ``《…》``, if any."""
    refers_to_user_material: bool = False
    """The request builds on material the user provides (``我提供的论文``, ``the attached
    report``, ``根据提供的Excel数据``): the user's files are the report's primary sources."""
    material_kinds: list[str] = field(default_factory=list)
    """What kinds of material the request says it provides, in the order named:
    ``paper``, ``video``, ``slides``, ``data``, ``document``, ``audio``, ``image``."""
    wants_table: bool = False
    """The request asks for a table in the report (``各论文Benchmark信息汇总表``,
    ``以表格形式对比``, ``include a summary table``)."""
    table_name: str | None = None
    """The table's name when the request gives one (``各论文Benchmark信息汇总表``)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- length ------------------------------------------------------------------------

_N = f"({NUMBER})"
_ZI = r"(?:个)?(?:汉)?字"
_LENGTH_WORD = r"(?:字数|篇幅|长度|全文|正文|字)"
_ZH_LENGTH_PATTERNS: list[tuple[str, str]] = [
    ("range", rf"{_N}\s*(?:{_ZI})?{RANGE_SEP}{_N}\s*{_ZI}"),
    ("range", rf"{_LENGTH_WORD}[^。；;\n]{{0,12}}?{_N}{RANGE_SEP}{_N}\s*(?:{_ZI})?\s*之间"),
    ("about", rf"{_N}\s*{_ZI}\s*(?:左右|上下)"),
    ("about", rf"(?:约|大约|大概|大致)\s*{_N}\s*{_ZI}"),
    ("min", rf"(?:不少于|不低于|至少|最少|不得少于|不能少于|不应少于|起码)\s*{_N}\s*{_ZI}"),
    ("min", rf"{_N}\s*{_ZI}\s*(?:以上|及以上|或以上)"),
    ("max", rf"(?:不超过|不多于|不得超过|不能超过|不应超过|最多|至多|控制在)\s*{_N}\s*{_ZI}"),
    ("max", rf"{_N}\s*{_ZI}\s*(?:以内|之内|以下)"),
    ("fallback", rf"(?:字数|篇幅)(?:要求)?\s*(?:为|是|：|:)?\s*{_N}\s*{_ZI}"),
]
_W = r"\s*(?:english\s+)?words?\b"
_EN_LENGTH_PATTERNS: list[tuple[str, str]] = [
    ("range", rf"between\s+{_N}\s+and\s+{_N}{_W}"),
    ("range", rf"{_N}\s*(?:-|–|—|~|to)\s*{_N}[\s-]*words?\b"),
    ("about", rf"(?:about|around|approximately|roughly|circa|~)\s*{_N}{_W}"),
    (
        "min",
        rf"(?:at\s+least|no\s+less\s+than|no\s+fewer\s+than|not\s+less\s+than|"
        rf"a\s+minimum\s+of|minimum\s+of|(?<!no\s)(?<!not\s)more\s+than|over)\s+{_N}{_W}",
    ),
    ("min", rf"{_N}\+?{_W}\s+(?:or\s+more|minimum|at\s+least)"),
    (
        "max",
        rf"(?:at\s+most|no\s+more\s+than|not\s+more\s+than|not\s+exceeding|up\s+to|"
        rf"under|fewer\s+than|less\s+than|a\s+maximum\s+of|maximum\s+of|within)\s+{_N}{_W}",
    ),
    ("max", rf"{_N}{_W}\s+(?:or\s+(?:fewer|less)|max(?:imum)?)"),
    ("fallback", rf"{_N}[\s-]*words?\b"),
]


def parse_length(request: str) -> LengthRule | None:
    """The length rule the request states: a range wins, then "about N", then bounds
    (a lower and an upper bound stated separately combine into a range), then a bare
    ``字数为N字`` / ``N words`` read as about N. Chinese patterns are tried first."""
    for unit, patterns, flags in (
        ("字", _ZH_LENGTH_PATTERNS, 0),
        ("words", _EN_LENGTH_PATTERNS, re.IGNORECASE),
    ):
        found: dict[str, LengthRule] = {}
        for kind, pattern in patterns:
            if kind in found:
                continue
            for m in re.finditer(pattern, request, flags):
                rule = _rule_from_match(kind, m, unit)  # type: ignore[arg-type]
                if rule is not None:
                    found[kind] = rule
                    break
        for kind in ("range", "about"):
            if kind in found:
                return found[kind]
        lower, upper = found.get("min"), found.get("max")
        lo = lower.min if lower else None
        hi = upper.max if upper else None
        if lower and lo is not None and hi is not None and lo <= hi:
            return LengthRule(
                lo, hi, lower.unit, f"{lower.source}，{upper.source if upper else ''}"
            )
        if lower or upper:
            return lower or upper
        if "fallback" in found:
            return found["fallback"]
    return None


def _rule_from_match(kind: str, m: re.Match[str], unit: Unit) -> LengthRule | None:
    numbers = [parse_number(g) for g in m.groups() if g is not None]
    if not numbers or any(n is None or n <= 0 for n in numbers):
        return None
    values = [n for n in numbers if n is not None]
    source = m.group(0).strip()
    if kind == "range" and len(values) == 2:
        lo, hi = sorted(values)
        return LengthRule(lo, hi, unit, source)
    n = values[0]
    if kind == "min":
        return LengthRule(n, None, unit, source)
    if kind == "max":
        return LengthRule(None, n, unit, source)
    return LengthRule(round(n * 0.9), round(n * 1.1), unit, source)


# --- sections ----------------------------------------------------------------------

_CN_NUM = "一二三四五六七八九十"
_MARKER_STYLES: list[str] = [
    rf"[（(]\s*(\d{{1,2}}|[{_CN_NUM}]{{1,3}})\s*[）)]",  # （1） (1) （一）
    r"(?<![\d.\w])(\d{1,2})\s*[.、．)）]",  # 1. 1、 1)
    rf"(?<![{_CN_NUM}\w])([{_CN_NUM}]{{1,3}})\s*、",  # 一、
    rf"第([{_CN_NUM}\d]{{1,3}})(?:部分|章|节)\s*[:：、]?",  # 第一部分：
]
_ITEM_END = "；;。\n"
_LIST_TAIL = re.compile(r"[\s；;，,、。.]*(?:以及|及|和|与|and)?\s*$")
_INSTRUCTION_TAIL = re.compile(
    r"^(?:并|且|同时|全文|报告)?(?:标注|注明|标明|注意|要求|须|需|使用|采用|字数|请|确保|保证|附上|引用)"
)
_NOTE_START = re.compile(
    r"^(需要|需|建议|包括|包含|如|例如|要求|应|可|重点|e\.g\.|such as|including)"
)
_REFERENCE_TITLE = re.compile(
    r"参考(资料|文献|来源)|资料来源|信息来源|数据来源|引用|references?|bibliography|"
    r"sources|works cited",
    re.IGNORECASE,
)


def _marker_number(text: str) -> int | None:
    return parse_number(text) if not text.isdigit() else int(text)


def _cut_at_top_level(text: str, stops: str) -> str:
    """Text up to the first character of ``stops`` outside parentheses."""
    depth = 0
    for i, ch in enumerate(text):
        if ch in "（(《“":
            depth += 1
        elif ch in "）)》”" and depth:
            depth -= 1
        elif depth == 0 and ch in stops:
            return text[:i]
    return text


def _split_note(raw: str) -> tuple[str, str]:
    """``核心数据摘要（需要在一页内…）`` → (``核心数据摘要``, ``需要在一页内…``); short
    parentheticals that belong to the title (``（2023–2025）``) stay in it."""
    m = re.fullmatch(r"(.+?)\s*[（(]([^（()）]*)[）)]\s*", raw)
    if m and (len(m.group(2)) > 12 or _NOTE_START.match(m.group(2))):
        return m.group(1).strip(), m.group(2).strip()
    return raw.strip(), ""


def parse_sections(request: str) -> list[RequiredSection]:
    """The longest numbered list in the request that counts 1, 2, 3…; else a colon list."""
    best: list[RequiredSection] = []
    for style in _MARKER_STYLES:
        markers = list(re.finditer(style, request))
        for start in range(len(markers)):
            if _marker_number(markers[start].group(1)) != 1:
                continue
            run = [markers[start]]
            for m in markers[start + 1 :]:
                if _marker_number(m.group(1)) == len(run) + 1:
                    run.append(m)
            if len(run) >= 2 and len(run) > len(best):
                best = _sections_from_run(request, run)
    if best:
        return best
    return _colon_list_sections(request)


def _sections_from_run(request: str, run: list[re.Match[str]]) -> list[RequiredSection]:
    sections: list[RequiredSection] = []
    for i, m in enumerate(run):
        end = run[i + 1].start() if i + 1 < len(run) else len(request)
        raw = _cut_at_top_level(request[m.end() : end], _ITEM_END)
        raw = _LIST_TAIL.sub("", raw).strip(" ：:")
        if i + 1 == len(
            run
        ):  # "（4）视频补充内容，标注来源。": the list ends, an instruction follows
            head, _, tail = raw.partition("，")
            if head and _INSTRUCTION_TAIL.match(tail.strip()):
                raw = head
        title, note = _split_note(raw)
        if title:
            sections.append(RequiredSection(m.group(0).strip(), title, len(sections) + 1, note))
    return sections


_COLON_LIST = re.compile(
    r"(?:包含|包括|分为|涵盖|含有)(?:以下|如下|下列)?(?:几个|这些)?(?:章节|部分|板块|内容|小节)"
    r"\s*[:：]\s*([^。\n]+)"
    r"|(?:include|includes|including|with|contain|containing)\s+(?:the\s+)?(?:following\s+)?"
    r"sections?\s*[:：]\s*([^.\n]+)",
    re.IGNORECASE,
)


def _colon_list_sections(request: str) -> list[RequiredSection]:
    m = _COLON_LIST.search(request)
    if not m:
        return []
    body = m.group(1) or m.group(2) or ""
    parts = re.split(r"\s*(?:[、，,；;]|\band\b|以及|及)\s*", body)
    titles = [p.strip(" \"'“”‘’《》") for p in parts]
    return [RequiredSection("", t, i + 1) for i, t in enumerate(t for t in titles if t)]


# --- format, style, language, figures -----------------------------------------------

_HTML = re.compile(
    r"(?:返回|输出|生成|采用|使用|以|用|写成|做成|格式为|\bin|\bas\s+an?|\bas)\s*html"
    r"|html\s*(?:格式|文档|网页|页面|文件|document|page|format|file|report)",
    re.IGNORECASE,
)
_NO_BULLETS = re.compile(
    r"不要分点|不分点|不要列点|避免分点|不用分点|不要(使用)?(项目符号|列表|条目)|不使用(项目符号|列表)"
    r"|以段落形式|段落式|no bullet|without bullet|avoid bullet|no lists|in prose|"
    r"as prose|continuous prose",
    re.IGNORECASE,
)
_NO_TABLES = re.compile(r"不要(使用)?表格|不使用表格|no tables|without tables", re.IGNORECASE)
_FIGURES = re.compile(
    r"图表|可视化|图示|配图|插图|画图|绘图|绘制|统计图|折线图|柱状图|饼图|"
    r"\bcharts?\b|\bplots?\b|\bgraphs?\b|\bfigures?\b|visuali[sz]",
    re.IGNORECASE,
)
_ASK_ENGLISH = re.compile(r"用英文|英文撰写|英语撰写|用英语|in English|English report", re.I)
_ASK_CHINESE = re.compile(r"用中文|中文撰写|in Chinese|Chinese report|in Mandarin", re.I)


def cjk_ratio(text: str) -> float:
    """Share of CJK characters among CJK characters plus Latin words."""
    cjk = len(re.findall(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]", text))
    latin = len(re.findall(r"[A-Za-z]+", text))
    return cjk / (cjk + latin) if cjk + latin else 0.0


def detect_language(request: str) -> Literal["zh", "en"]:
    if _ASK_ENGLISH.search(request):
        return "en"
    if _ASK_CHINESE.search(request):
        return "zh"
    return "zh" if cjk_ratio(request) >= 0.3 else "en"


# --- the user's material, tables -------------------------------------------------------

_MATERIAL_KINDS: list[tuple[str, str]] = [
    ("paper", r"论文|文献|papers?|pdfs?"),
    ("video", r"视频|录像|影片|录屏|videos?"),
    ("slides", r"pptx?|幻灯片|演示文稿|课件|slides?|slide\s+deck|decks?|presentations?"),
    (
        "data",
        r"数据集|数据|excel|xlsx|csv|表格|统计表|spreadsheets?|datasets?|data|sheets?|"
        r"workbooks?",
    ),
    ("document", r"文档|报告|说明书|说明|word|docx|documents?|reports?|manuals?|notes"),
    ("audio", r"音频|录音|播客|audio|podcasts?|recordings?"),
    ("image", r"图片|图像|照片|截图|images?|photos?|pictures?|screenshots?"),
]
_GENERIC_MATERIAL = r"材料|资料|文件|内容|信息|附件|files?|materials?|sources|attachments?"


def _bounded(nouns: str) -> str:
    """Latin nouns must stand alone (``data`` inside ``database`` is not one); the
    boundary is Latin letters only, so ``Excel数据`` still names Excel."""
    return "|".join(
        rf"(?<![a-z]){n}(?![a-z])" if re.match(r"[a-z]", n, re.IGNORECASE) else n
        for n in nouns.split("|")
    )


_MATERIAL_NOUN = re.compile(
    "|".join(
        f"(?P<{kind}>{_bounded(nouns)})"
        for kind, nouns in [*_MATERIAL_KINDS, ("generic", _GENERIC_MATERIAL)]
    ),
    re.IGNORECASE,
)
_ZH_REFERENCE = re.compile(
    # "基于我提供的 PPT", "根据提供的Excel数据", "我上传的论文": 提供的 needs a speaker or a
    # framing verb before it, so "平台提供的服务" or "国家统计局提供的数据" is not the user's
    r"(?:我们?|您|你|用户|已|上述|以下|下面|前面|上面|基于|根据|依据|结合|利用|使用|参考|"
    r"阅读|分析|对|就|从|按照|围绕|以|据|请|将|把|这些|这份|这篇)\s*所?\s*"
    r"(?:提供|上传|附上|附带|给出|给定|发送|提交|准备|整理)(?:了|好)?的"
    r"|(?:我|我们)(?:发|传)?给(?:你|您)的"
    r"|随附的?|所附的?|附件(?:中|里)?的?|文件夹(?:中|里|内)的?"
    r"|(?:这|该|此)(?:篇|份|个|段|组|套|部)?(?=论文|视频|PPT|ppt|幻灯片|课件|数据集|录音|音频|"
    r"演示文稿|Excel|表格|文档)"
)
_EN_REFERENCE = re.compile(
    r"\b(?:attached|provided|uploaded|enclosed|supplied|accompanying|shared|(?<=the\s)given)\s+"
    r"|\b(?:my|our|this|these|the\s+following)\s+(?=(?:[\w-]+\s+){0,2}?(?:papers?|videos?|"
    r"slides|deck|data|dataset|spreadsheet|files|documents|recording|notes)\b)"
    r"|\b(?:in|from)\s+(?:the|this|my)\s+folder\b",
    re.IGNORECASE,
)
# the noun phrase after 提供的 ends at its head noun (…内容, …材料) or where the
# sentence goes on (撰写, 进行, 中…): "基于我提供的 PPT 内容写报告" names slides, not a report
_ZH_PHRASE_END = re.compile(
    r"(?<=内容|材料|资料|文件|信息)|中|里|撰写|写|进行|分析|完成|生成|制作|结合|并"
)
_EN_REFERENCE_AFTER = re.compile(
    r"\b(?P<noun>[\w-]+)\s+(?:that\s+|which\s+)?(?:I|we)\s*(?:'ve|\s+have)?\s*"
    r"(?:provided|uploaded|attached|shared|sent|gave\s+you|supplied|included)\b",
    re.IGNORECASE,
)


def material_kinds_named(text: str) -> list[str]:
    """The kinds of material ``text`` names (``视频补充内容`` → ``["video"]``), in order."""
    kinds: list[str] = []
    for noun in _MATERIAL_NOUN.finditer(text):
        if noun.lastgroup and noun.lastgroup != "generic" and noun.lastgroup not in kinds:
            kinds.append(noun.lastgroup)
    return kinds


def material_references(request: str) -> list[str] | None:
    """The kinds of material the request says the user provides (``我提供的论文及相关视频``
    → ``["paper", "video"]``; ``the attached report`` → ``["document"]``; ``根据提供的
    材料`` → ``[]``), or None when it does not refer to material of its own (``结合公开资料``
    and ``公开可查的权威数据集`` are public sources, not the user's)."""
    windows: list[str] = []
    for m in _ZH_REFERENCE.finditer(request):
        window = _cut_at_top_level(request[m.end() : m.end() + 20], "，。；;,!?！？：:\n")
        windows.append(_ZH_PHRASE_END.split(window, maxsplit=1)[0])
    for m in _EN_REFERENCE.finditer(request):
        # the noun comes within a few words ("the attached quarterly report"); "provided
        # that …" or "data provided by the World Bank" name nothing of the user's
        words = re.split(r"[,.;:!?\n]", request[m.end() : m.end() + 50])[0].split()[:4]
        if words and words[0].lower() not in {"that", "by", "for", "to", "in", "with", "as"}:
            windows.append(" ".join(words))
    for m in _EN_REFERENCE_AFTER.finditer(request):
        windows.append(m.group("noun"))
    refers = any(_MATERIAL_NOUN.search(window) for window in windows)
    kinds = list(dict.fromkeys(k for window in windows for k in material_kinds_named(window)))
    return kinds if refers else None


_TABLE_VERB_ZH = re.compile(
    r"制作|绘制|整理|给出|列出|生成|输出|形成|附上|包含|包括|编制|设计|汇总|列成|做成|做|画|"
    r"提供|采用|使用|用|以|附|含"
)
_TABLE_NOUN_ZH = re.compile(r"(?<![图代发外仪列])表(格)?(?![达明现述示演面态彰率决])")
_QUANTITY = re.compile(r"^(?:一|1|两|二|三|几|若干|多|以下|如下|出|成|为|了)*(?:张|份|个|组|幅)?")
_TABLE_EN = re.compile(
    r"\b(?:include|add|provide|give|make|create|produce|present|compile|build|prepare|"
    r"draw\s+up|end\s+with|with|contain|containing|write|generate|draw)\s+(?:an?|one|two|\d+)\s+"
    r"(?P<name>(?:[\w-]+\s+){0,4}?)tables?\b(?!\s+of\s+contents)"
    r"|\b(?:in|as|into)\s+(?:an?\s+)?(?:[\w-]+\s+){0,2}?table\b(?!\s+of\s+contents)"
    r"|\btabular\b|\btabulat",
    re.IGNORECASE,
)


def table_request(request: str, sections: list[RequiredSection]) -> str | None:
    """The table the request asks for: its name (``各论文Benchmark信息汇总表``), ``""``
    when unnamed (``以表格形式``, ``in a table``), None when no table is asked for.
    A required section named as a table counts; ``图表`` (charts), ``列表`` (a list),
    ``表明``/``代表``/``发表`` do not, nor does a table the user *provides* (``提供的数据表``)."""
    for section in sections:
        if _TABLE_NOUN_ZH.search(section.title) or re.search(r"\btables?\b", section.title, re.I):
            return section.title
    named = re.search(r"[《“\"]([^》”\"]{2,40}表)[》”\"]", request)
    if named:
        return named.group(1)
    for verb in _TABLE_VERB_ZH.finditer(request):
        window = re.split(r"[，。；;,.!?！？：:\n（）()]", request[verb.end() : verb.end() + 26])[0]
        if window.startswith("的"):
            continue  # 提供的数据表 is the user's input, not the report's table
        noun = _TABLE_NOUN_ZH.search(window)
        if noun:
            name = _QUANTITY.sub("", window[: noun.end()]).strip()
            return "" if name in ("表", "表格") else name
    m = _TABLE_EN.search(request)
    if m:
        name = (m.group("name") or "").strip()
        return f"{name} table" if name else ""
    return None


def parse_request(request: str) -> RequestConstraints:
    sections = parse_sections(request)
    kinds = material_references(request)
    no_tables = _NO_TABLES.search(request) is not None
    table = None if no_tables else table_request(request, sections)
    reference = next((s.title for s in sections if _REFERENCE_TITLE.search(s.title)), None)
    title = re.search(r"《([^》]{1,80})》", request)
    return RequestConstraints(
        length=parse_length(request),
        sections=sections,
        format="html" if _HTML.search(request) else "markdown",
        language=detect_language(request),
        no_bullets=_NO_BULLETS.search(request) is not None,
        no_tables=no_tables,
        wants_figures=_FIGURES.search(request) is not None,
        reference_section=reference,
        title=title.group(1) if title else None,
        refers_to_user_material=kinds is not None,
        material_kinds=kinds or [],
        wants_table=table is not None,
        table_name=table or None,
    )
