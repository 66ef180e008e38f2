"""Write docs/settings.md from the settings tree's field descriptions (run after changing them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args, get_origin

from pydantic import BaseModel

from deepfolder.settings import ENV_OVERRIDES, OTHER_ENV_VARS, PRESETS, Settings

ROOT = Path(__file__).resolve().parents[1]


def rows(model: type[BaseModel], prefix: str) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += rows(annotation, f"{prefix}{key}.")
            continue
        if field.is_required():
            desc = (field.description or "").replace("|", "\\|")
            out.append(f"| `{prefix}{key}` | required | {desc} |")
            continue
        default = field.get_default(call_default_factory=True)
        shown = (
            json.dumps(default, ensure_ascii=False) if not isinstance(default, BaseModel) else ""
        )
        desc = (field.description or "").replace("|", "\\|")
        out.append(f"| `{prefix}{key}` | `{shown}` | {desc} |")
        item = get_args(annotation)[0] if get_origin(annotation) is list else None
        if isinstance(item, type) and issubclass(item, BaseModel):  # each entry's fields
            out += rows(item, f"{prefix}{key}[].")
    return out


def main() -> None:
    lines = [
        "# Settings",
        "",
        "Generated from `src/deepfolder/settings.py` by `scripts/make_settings_doc.py`.",
        "",
        "Later sources win: defaults → preset (`--preset`) → JSON config file (`--config`, "
        "`$DEEPFOLDER_CONFIG`, `~/.config/deepfolder/config.json`) → environment variables → "
        "command-line flags. API keys are never stored: only the name of the variable that "
        "holds one. Every run writes the resolved settings and their hash to `settings.json`; "
        "the index directory is keyed by the hash of the ingest settings.",
        "",
        "A config-file key or section that is not in the table below is an error naming the "
        "key, the file and the nearest valid key (e.g. `settings: unknown key "
        "'retrieval.rerank_dept' in /home/me/deepfolder.json — did you mean "
        "'retrieval.rerank_depth'?`); so is a `DEEPFOLDER_*` variable that is not listed "
        "under [Environment variables](#environment-variables) and not the key variable a "
        "setting names (`model.api_key_env`, `model.vision_api_key_env`). The command exits "
        "with status 2.",
        "",
        "Example config file:",
        "",
        "```json",
        '{"model": {"model": "deepseek:deepseek-chat"}, "validate": {"max_revisions": 3}}',
        "```",
        "",
        "| setting | default | meaning |",
        "|---|---|---|",
        *rows(Settings, ""),
        "",
        "## Environment variables",
        "",
        "Settings:",
        "",
        *[f"- `{var}` → `{'.'.join(path)}`" for var, path in ENV_OVERRIDES.items()],
        "",
        "Read by deepfolder for other purposes:",
        "",
        *[f"- `{var}`: {meaning}" for var, meaning in OTHER_ENV_VARS.items()],
        "",
        "## Presets",
        "",
        *[
            f"- `{name}`: `{json.dumps(value, ensure_ascii=False)}`"
            for name, value in PRESETS.items()
        ],
        "",
    ]
    (ROOT / "docs" / "settings.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
