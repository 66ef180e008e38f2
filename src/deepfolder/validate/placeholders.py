"""Template text that must never become a fact of a report.

Slide decks and document templates carry lines that look like content and are not:
``汇报人：xxx``, ``作者为xxx20xx-07-16``, ``[姓名]``, ``单击此处添加标题``, ``Lorem ipsum``,
and demo disclaimers such as ``本报告中的数据仅用于示例演示``. A report sentence that
repeats one overlaps its source word for word, so a lexical support judge would call it
*supported*; these patterns let the validator see it for what it is:

- :data:`PLACEHOLDER` — a slot a template leaves to be filled in (``xxx``, ``20xx``,
  ``[作者]``, ``your name``, ``click to add title``);
- :data:`FILLER` — a statement about the material being a sample or a demo, which no
  evidence can make a fact about the subject.

Anonymised names in legal texts (``张某``, ``王××``) are real content and are not matched.
"""

from __future__ import annotations

import re

PLACEHOLDER = re.compile(
    r"(?<![a-z])x{3,}(?![a-z])"  # xxx, XXXX
    r"|(?<!\d)(?:19|20)xx(?![a-z])"  # 20xx, 19XX
    r"|[\[【［{<〈]\s*(?:姓名|名字|作者(?:姓名)?|标题|题目|日期|时间|单位|机构|公司(?:名称)?|学校|"
    r"部门|电话|邮箱|地址|name|author|title|date|company|organi[sz]ation|your\s+\w+)\s*[\]】］}>〉]"
    r"|lorem\s+ipsum"
    r"|\byour\s+(?:name|company|title|logo|text)\b"
    r"|(?:请|在此|此处|这里)(?:输入|填写|添加|插入)(?:文字|文本|标题|内容|姓名|名称)"
    r"|(?:单击|点击)(?:此处)?(?:添加|输入|编辑)(?:标题|文本|文字|内容|备注)"
    r"|\bclick\s+(?:here\s+)?to\s+(?:add|edit|insert)\b"
    r"|\b(?:insert|add|enter)\s+(?:your\s+)?(?:title|text|name)\s+here\b",
    re.IGNORECASE,
)
FILLER = re.compile(
    r"(?:仅|只)(?:用于|作为|供|做)(?:示例|演示|展示|样例|举例|模板)"
    r"|(?:数据|内容|案例)(?:为|是|均为|纯属)虚构"
    r"|(?:示例|演示|样例|虚构)(?:数据|文字|文本|内容)"
    r"|\bfor\s+(?:demonstration|illustration|illustrative|example)\s+purposes?(?:\s+only)?"
    r"|\b(?:sample|dummy|placeholder|fictitious)\s+(?:data|text|content)\b",
    re.IGNORECASE,
)


def template_text(text: str) -> tuple[str, str] | None:
    """``("placeholder", "xxx")`` / ``("filler", "仅用于示例演示")`` for the first template
    text in ``text``; None when there is none."""
    m = PLACEHOLDER.search(text)
    if m:
        return "placeholder", m.group(0)
    m = FILLER.search(text)
    if m:
        return "filler", m.group(0)
    return None


def without_template_sentences(text: str) -> str:
    """``text`` with every sentence that holds template text removed: a template line is
    not evidence of anything, so it must not lend its words to a claim."""
    parts = re.split(r"(?<=[。！？!?；;\n])|(?<=[.])\s+", text)
    return "".join(p for p in parts if template_text(p) is None)
