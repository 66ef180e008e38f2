"""Everything deepfolder tells a model, in one place, one module per user:

- :mod:`.material`: how folder text is quoted (``<material source="…">…</material>``,
  :func:`~.material.quote_material`) and the standing rule that quoted material is data,
  never instructions (``MATERIAL_RULE``);
- :mod:`.writing`: the agent policy's system prompt, task turn and loop notes, and the
  pipeline policy's planning, query, section-writing and translation prompts;
- :mod:`.revision`: the validator's revision instructions (one text per kind of
  failure) and the revisor's rewrite prompt;
- :mod:`.judge`: the support judge's prompt;
- :mod:`.retrieval`: cross-lingual query translation and the LLM reranker;
- :mod:`.vision`: the vision model's prompts for video frames and single images.

The package sits just above the records (it imports only ``records`` and
``request_model``), so every layer that talks to a model, the index included, takes its
texts from here. What stays elsewhere is not a prompt of ours: a tool's docstring is its
own description (``tools.base``), tool observations are tool output, and the wire
formats of the model adapters (the JSON-schema instruction for endpoints without
structured output, the text tool-call protocol) belong to ``llm``.

A resumed run replays recorded model calls by the hash of what was sent
(``llm/replay.py``): any change to a text here makes earlier runs' recorded calls miss,
so change wording on purpose, never in passing.
"""
