"""What counts as a statistic: the numbers that identify a fact.

One definition for the two places that need it: the pipeline ties a sentence to the
excerpt holding the same statistics (``agent.pipeline.attach_citations``), and the
validator flags a paragraph that states statistics without citing anything
(``validate.checks.uncited_paragraphs``).

A statistic is a percentage (``41%``, ``12.5 %``), a number written with thousands
separators (``1,268``, ``676,570,149``), a decimal (``8.6``) or a number of five or more
digits (``86862``). Years and small counts (``2023``, ``14``) are not: they name a time
or a quantity too common to tie a sentence to one source.
"""

from __future__ import annotations

import re
import unicodedata

STATISTIC = re.compile(r"\d+(?:\.\d+)?\s?[%％]|\d{1,3}(?:[,，]\d{3})+(?:\.\d+)?|\d+\.\d+|\d{5,}")


def statistics(text: str) -> set[str]:
    """The statistics in ``text``, normalised (NFKC, separators and spaces removed):
    ``676,570,149`` → ``676570149``, ``41 %`` → ``41%``, ``３０％`` → ``30%``."""
    return {
        re.sub(r"[,\s]", "", unicodedata.normalize("NFKC", raw)) for raw in STATISTIC.findall(text)
    }
