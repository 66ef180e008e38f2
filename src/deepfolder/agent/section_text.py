"""Section text as the pipeline keeps it: what a small model must not decide is
stripped (typed ids, headings, reference lists, repeated lines), and a section over its
budget loses whole sentences from its end."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from deepfolder.agent.attach import SENTENCE_RE
from deepfolder.validate.length import count_length

if TYPE_CHECKING:
    from deepfolder.agent.state import SectionPlan

CLEAN_PATTERNS = [
    re.compile(
        r"\[\s*(?:E[0-9a-fA-F]{0,12}|\d{1,2})(?:\s*[,，、]\s*(?:E[0-9a-fA-F]{0,12}|\d{1,2}))*\s*\]"
    ),
    re.compile(r"【[^】]{0,20}】"),
    re.compile(r"（(?:材料|来源|见)?\s*\d{1,2}\s*）"),
]


# Lines where the small model echoes the prompt's scaffolding instead of writing.
PROMPT_ECHO = re.compile(
    r"^(?:本节正文|正文|请直接(?:用中文)?输出本节正文.*|材料|Section text|Material)\s*[:：]?\s*$"
    r"|^[（(](?:用户文件|网页|user file|web page)\s[^）)]*[）)]\s*$"
    r"|^\[\d{1,2}\]\s*[（(](?:用户文件|网页|user file|web page)"
    r"|^</?material\b"
    r"|^<(?:video|audio|img|iframe|source)\b[^>]*>"
    r"|^[^\s,，]+\.[A-Za-z0-9]{2,5}\s*[,，]\s*(?:第\s*\d+\s*[页张段]|p\.\s*\d+|slide \d+|\d\d:\d\d)"
    r"[^。.!?！？]{0,20}$"
)
PROMPT_ECHO_END = re.compile(r"^(?:本节已经写好的部分如下|The section so far is below)")


# The excerpt's origin label copied into a sentence: "DPO.pdf（Direct Preference
# Optimization: …）是一篇…" — the reader gets the title, not the file name.
FILE_LABEL = re.compile(
    r"(?:用户文件|user file)?\s*[^\s，。、（(\[]+\."
    r"(?:pdf|docx?|pptx?|xlsx?|csv|mp4|mov|mkv|webm|mp3|wav|m4a)\s*[（(]([^）)]{4,160})[）)]"
)


def _title_for_label(m: re.Match[str]) -> str:
    line = m.string
    return f"《{m.group(1)}》" if re.search(r"[\u4e00-\u9fff]", line) else f"“{m.group(1)}”"


# A phrase the small model repeats in a loop ("PPO 算法、PPO 算法、PPO 算法、…").
# A phrase of four or more characters said three times in a row is a loop too
# ("偏好函数的定义、偏好函数的定义、偏好函数的定义").
LOOP = re.compile(r"(\S.{1,24}?)(?:[、，,；;\s]*\1){3,}|(\S.{3,24}?)(?:[、，,；;\s]*\2){2,}")


def is_fragment(line: str) -> bool:
    """A short line that is no sentence ("NeurIPS 2023", "中文", "2024年7月29日",
    "Sharma, Archit - 作者2"): the small model's notes, not prose of a report."""
    if (
        not line
        or re.search(r"[。！？!?；;：:]\s*$|[。！？!?]|\.\s", line)
        or line.startswith("![")
    ):
        return False
    units = len(re.findall(r"[\u4e00-\u9fff]", line)) + len(re.findall(r"[A-Za-z]+", line))
    return units < 10


def clean_section_text(text: str, plan: SectionPlan) -> str:
    """Strip what the model must not decide: typed ids/numbers, headings, reference lists;
    drop lines it repeated."""
    lines = []
    seen: set[str] = set()
    for line in text.strip().splitlines():
        bare = line.strip().lstrip("#").strip().strip("*").strip()
        if line.lstrip().startswith("#") or bare in {plan.title, plan.heading}:
            continue
        if any(bare.startswith(w) for w in ("参考文献", "参考资料", "References")):
            break
        if PROMPT_ECHO_END.match(bare):
            break  # the model repeats the prompt's "the section so far" and what follows
        if PROMPT_ECHO.match(bare) or is_fragment(bare):
            continue
        # Formal prose: bullets become sentences of a paragraph, bold markers go.
        line = re.sub(r"^\s*(?:[-*•]|\d+[.、)])\s+", "", line).replace("**", "")
        if line.strip() and line.strip() in seen:
            continue  # the small model repeats whole lines; keep the first
        seen.add(line.strip())
        lines.append(line.rstrip())
    if lines:  # the model often opens with the section title glued to the first sentence
        for prefix in (plan.heading, plan.title):
            if prefix and len(lines[0]) > len(prefix) and lines[0].startswith(prefix):
                lines[0] = lines[0][len(prefix) :].lstrip("：: ")
                break
    lines = [FILE_LABEL.sub(_title_for_label, line) for line in lines]
    out = without_dangling_announcement("\n".join(lines))
    for pattern in CLEAN_PATTERNS:
        out = pattern.sub("", out)
    out = LOOP.sub(lambda m: m.group(1) or m.group(2), out)
    return re.sub(r"\n{3,}", "\n\n", out)


def without_dangling_announcement(text: str) -> str:
    """``text`` less the announcements it ends with ("具体步骤如下：" with nothing after
    it: the model stopped early, or what followed was removed as a repeat)."""
    lines = text.strip().splitlines()
    while lines and (not lines[-1].strip() or lines[-1].rstrip().endswith(("：", ":"))):
        lines.pop()
    return "\n".join(lines).strip()


def new_lines(addition: str, text: str) -> str:
    """The lines of ``addition`` that ``text`` does not hold already (a continuation
    often starts by copying what the section said)."""
    have = {_line_key(line) for line in text.splitlines() if line.strip()}
    kept = [line for line in addition.splitlines() if _line_key(line) not in have]
    return "\n".join(kept).strip()


def _line_key(line: str) -> str:
    return re.sub(r"\[E[0-9a-f]{8}\]|\s", "", line)


def trim_to(text: str, budget: int, unit: str) -> str:
    """Drop whole sentences from the end (last paragraph first) until the text fits;
    paragraphs, citations and figure lines stay intact."""
    paras = text.split("\n")

    def prose_indexes() -> list[int]:
        return [i for i, p in enumerate(paras) if p.strip() and not p.lstrip().startswith("!")]

    while count_length("\n".join(paras), unit) > budget:
        idx = prose_indexes()
        if not idx:
            break
        last = idx[-1]
        sentences = [m.group(0) for m in SENTENCE_RE.finditer(paras[last])]
        if len(idx) == 1 and len(sentences) <= 1:
            break  # never trim a section to nothing
        paras[last] = "".join(sentences[:-1]) if len(sentences) > 1 else ""
    # A sentence that announces what follows ("…采取以下措施：") must not end the text.
    idx = prose_indexes()
    if len(idx) > 1 and paras[idx[-1]].rstrip().endswith(("：", ":")):
        paras[idx[-1]] = ""
    return re.sub(r"\n{3,}", "\n\n", "\n".join(paras)).strip()
