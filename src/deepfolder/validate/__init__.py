"""The validator: every citation real and supporting, every stated constraint met.

- the constraints it checks (length, sections, format, style, language, figures) are
  the request model's (:mod:`deepfolder.request_model`);
- :mod:`.length` counts 字 / words by the documented rule;
- :mod:`.citations` finds and resolves citations (ids, rendered links, free form);
- :mod:`.support` judges whether cited evidence supports each cited sentence;
- :mod:`.placeholders` knows template text (``xxx``, ``20xx``, ``仅用于示例演示``), which is
  never a fact; :mod:`.repetition` finds and deletes sentences said twice;
- :mod:`.grounding` checks that each section cites the user's own files when the request
  builds on them; :mod:`.quality` holds the repetition, template-text, table and
  request-shape checks;
- :mod:`.checks` runs everything → :class:`ValidationReport` (``validation.json``);
- :mod:`.revise` turns failures into per-section instructions (worded in
  :mod:`deepfolder.prompts.revision`) and runs the bounded loop;
- :mod:`.command` is ``deepfolder check RUN_DIR``.

The validator never searches or calls a tool.
"""

from deepfolder.validate.checks import CheckResult, ValidationReport, validate_report
from deepfolder.validate.length import count_length
from deepfolder.validate.quality import remove_template_sentences
from deepfolder.validate.repetition import remove_repeated_sentences
from deepfolder.validate.revise import (
    RevisionInstruction,
    revise_until_valid,
    revision_instructions,
    strip_unresolvable_citations,
)

__all__ = [
    "CheckResult",
    "RevisionInstruction",
    "ValidationReport",
    "count_length",
    "remove_repeated_sentences",
    "remove_template_sentences",
    "revise_until_valid",
    "revision_instructions",
    "strip_unresolvable_citations",
    "validate_report",
]
