"""What the writer is told: the agent policy's system prompt, task turn and loop notes,
and the pipeline policy's prompts (section plan, search queries, one section from
numbered excerpts, continuation, translation).

Folder text in these prompts is quoted with :func:`~deepfolder.prompts.material.quote_material`;
the agent's system prompt ends with ``MATERIAL_RULE``.
"""

from __future__ import annotations

from deepfolder.prompts.material import MATERIAL_RULE, quote_material
from deepfolder.request_model import RequestConstraints

AGENT_SYSTEM = (
    """You are deepfolder, a research agent working over the user's local folder of \
materials (documents, slides, spreadsheets, media transcripts and collections of web pages).

How to work:
- Use the tools to find and read the materials. Do not rely on memory for facts about them.
- The user's own files (documents, slides, sheets, media: the brief in the folder summary lists them with their title, authors, headings and evidence ids) are the subject of the report; web-page collections are background. Start from the user's files, search them with their own words (in their language), and cite them in every section they bear on.
- Search several times with different words; read the most relevant passages in full.
- Cite every factual statement with the evidence id(s) shown in tool results, in square \
brackets right after the statement, e.g. "...增长了12% [E1a2b3c4d]." Use only ids that \
appeared in tool results; never invent one.
- The reference list is generated automatically from your citations: do not write one \
yourself (if the request asks for a reference section, write just its heading).
- When you have enough evidence, reply with the complete report in Markdown and no tool \
call. Write in {language_name}.

"""
    + MATERIAL_RULE.replace("{", "{{").replace("}", "}}")
    + """
{constraints}"""
)

TASK_TEMPLATE = """Request:
{request}

Folder summary:
{summary}"""


def task_message(request: str, summary: str) -> str:
    """The task turn: the user's request as it is, the folder summary (file names and
    article titles are folder text) quoted as material."""
    return TASK_TEMPLATE.format(
        request=request, summary=quote_material(summary, label="folder summary")
    )


CUT_SHORT = (
    "The {limit} limit is reached. Do not call tools any more: write the complete report now "
    "from the evidence you have, citing evidence ids in square brackets."
)

EMPTY_REPLY = "Your reply was empty. Either call a tool or write the complete report in Markdown."


def language_name(language: str) -> str:
    return "Chinese (简体中文)" if language.startswith("zh") else "English"


def describe_constraints(c: RequestConstraints) -> str:
    """The checkable constraints, stated plainly for the model."""
    lines = ["", "The report will be checked for:"]
    if c.length is not None:
        lo = c.length.min if c.length.min is not None else 0
        hi = c.length.max if c.length.max is not None else "no upper bound"
        lines.append(
            f"- length: {lo}–{hi} {c.length.unit} of body text (citations and the reference "
            "list are not counted); use count_length to check a draft."
        )
    if c.sections:
        titles = "; ".join(f"{s.label}{s.title}" for s in c.sections)
        lines.append(f"- these sections, in this order, each as a Markdown heading: {titles}")
    if c.format == "html":
        lines.append("- format: the final answer is a complete HTML document.")
    if c.no_bullets:
        lines.append("- no bullet lists: write connected paragraphs.")
    if c.wants_figures:
        lines.append(
            "- figures: embed at least one figure produced in this run with run_python "
            "(Markdown image syntax)."
        )
    return "\n".join(lines) if len(lines) > 2 else ""


# -- the agent loop's context budgeting (agent.context) ---------------------------------
SHORTENED_NOTE = "[shortened to save context; read the evidence ids above again if needed]"
"""Ends a tool result shortened to fit the context window."""


def dropped_exchanges_note(dropped: int) -> str:
    """Stands where earlier exchanges were removed to fit the context window."""
    return (
        f"[{dropped} earlier exchange(s) were removed to fit the context "
        "window; the evidence ids you saw in them are still citable.]"
    )


# -- the pipeline policy ------------------------------------------------------------------
def plan_prompt(request: str, zh: bool) -> str:
    """Asks for the report's section titles when the request names none (JSON)."""
    if zh:
        return f"为下面的写作要求列出3到5个报告章节标题（只输出JSON）。\n要求：{request}"
    return f"List 3 to 5 section titles for this report (JSON only).\nRequest: {request}"


def query_prompt(topic: str, section: str, zh: bool, material_en: bool = False) -> str:
    """Asks for search queries for one section (JSON); ``material_en``: the section's
    material is English, so the Chinese report's queries are asked in English."""
    if zh:
        lang_note = "材料是英文的，请给出英文搜索词" if material_en else "请给出中文搜索词组"
        return f"报告主题：{topic}\n当前章节：{section}\n{lang_note}，共2个，用于检索资料（只输出JSON）。"
    return f"Report topic: {topic}\nSection: {section}\nGive 2 search queries to find material (JSON only)."


def origin_label(label: str, user_material: bool, zh: bool) -> str:
    """Where an excerpt comes from, as the section writer is shown it."""
    if user_material:
        return f"用户文件 {label}" if zh else f"user file {label}"
    return f"网页 {label}" if zh else f"web page {label}"


def files_line(names: list[str], zh: bool) -> str:
    """The line naming the user's files the report is about."""
    return ("用户提供的材料：" if zh else "The user's files: ") + "；".join(names)


def section_prompt(
    *,
    request: str,
    subject: str,
    heading: str,
    budget: int,
    excerpts: list[tuple[str, str]],
    no_bullets: bool,
    notes: list[str],
    zh: bool,
) -> str:
    """Asks for one section's text from numbered excerpts, given as (origin, text); the
    excerpts are quoted as material, data and never instructions (MATERIAL_RULE)."""
    items = "\n".join(f"[{i}] （{origin}）{text}" for i, (origin, text) in enumerate(excerpts, 1))
    items = quote_material(items, label="excerpts")
    if zh:
        style = "不要使用分点列表，写成连贯段落。" if no_bullets else ""
        extra = ("\n修改要求：" + "；".join(notes)) if notes else ""
        return (
            f"写作任务：{request}\n{subject}\n你现在只写其中一节：{heading}\n"
            f"要求：约{budget}字；用中文正式书面语写成二至三个连贯段落；只使用下面材料中的事实，"
            "优先使用用户文件中的内容，网页只作补充；"
            "不要添加材料以外的背景信息、地名或数据；英文材料请译成中文再使用；"
            f"{style}不要写标题、列表或加粗，不要写参考文献和材料编号。{extra}\n\n"
            f"材料：\n{items}\n\n请直接用中文输出本节正文（不要照抄英文原文）："
        )
    bullets = "Do not use bullet lists; write connected paragraphs. " if no_bullets else ""
    extra_en = ("\nRevision notes: " + "; ".join(notes)) if notes else ""
    return (
        f"Task: {request}\n{subject}\nWrite only this section: {heading}\n"
        f"About {budget} words; formal; use only facts from the material below, the user's "
        f"files first; {bullets}"
        f"no heading, no references, no material numbers.{extra_en}\n\nMaterial:\n{items}\n\nSection text:"
    )


def part_note(zh: bool) -> str:
    """The writer's note for a later part of a section written in parts
    (``agent.parts``): it is shown its own passages, not the section so far."""
    if zh:
        return "这是本节的后续部分，前文已经概括介绍过，不要再概括或重复，只写下面材料中的具体内容"
    return (
        "this is a later part of the section, after its introduction: do not introduce "
        "or summarise again; write only about the specific content of the material below"
    )


def translate_prompt(source: str) -> str:
    """Asks for a Chinese section's English paragraphs in Chinese."""
    return (
        "请把下面的英文内容忠实地翻译成简体中文书面语，保留人名、模型名和缩写（如 DPO、RLHF）"
        f"的英文写法，不要增加内容，只输出译文：\n\n{source}"
    )


# The writer's note for a basic-information section whose title, authors and venue code
# has already stated (grounding.section_notes).
IDENTITY_STATED_ZH = (
    "本节开头已由系统写明题目、作者、单位和发表信息，不要再列出作者、单位或日期，"
    "只用两段连贯的文字介绍论文研究的问题、提出的方法和主要贡献"
)
BASIC_FOCUS = {
    True: "论文研究的问题、提出的方法与主要贡献",
    False: "the problem the work addresses, its method and its main contributions",
}
"""The heading a basic-information section's writer is given once code has stated the
file's identity (``grounding.identity_stated``)."""
IDENTITY_STATED_EN = (
    "the title, authors, affiliation and venue are already stated at the start of the "
    "section: do not list them again; write two paragraphs on the problem the work "
    "addresses, its method and its main contributions"
)
