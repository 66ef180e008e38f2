"""One settings tree for deepfolder, with a description on every field.

Settings come from (later wins): defaults → a named preset → the config file
(``--config`` or ``$DEEPFOLDER_CONFIG`` or ``~/.config/deepfolder/config.json``) →
environment variables (``DEEPFOLDER_MODEL``, ``DEEPFOLDER_BASE_URL``…) → CLI flags.
API keys are never stored in settings: only the *name* of the environment variable that
holds the key, so ``settings.json`` in a run directory is safe to share.

A typo must not be silently dropped (pydantic ignores unknown fields), so
``load_settings`` refuses a config-file key or section that is not in the tree, and a
``DEEPFOLDER_*`` variable that is neither a setting (``ENV_OVERRIDES``) nor one deepfolder
reads for another purpose (``OTHER_ENV_VARS``) nor the key variable a setting names
(``model.api_key_env``…); the error names the key, where it came from and the nearest
valid key. Run directories' ``settings.json`` files are read leniently elsewhere, so an
old run still resumes after a setting is removed.

``ingest_hash()`` identifies an index: change an ingest setting and a new index is built.
``settings_hash()`` is written into every run's output.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator


class ModelSettings(BaseModel):
    model: str = Field(
        "embedded",
        description="Chat model as 'provider:model' (e.g. 'openai:gpt-4o-mini', "
        "'deepseek:deepseek-chat', 'qwen:qwen-plus', 'ollama:qwen2.5:7b', "
        "'vllm:Qwen/Qwen2.5-7B-Instruct'), 'embedded' for the local model carried in a "
        "PyPI package, or 'fake:…' for the test models.",
    )
    base_url: str | None = Field(
        None,
        description="OpenAI-compatible base URL; default is the provider's public URL "
        "(or http://127.0.0.1:8000/v1 for vllm/sglang/llamacpp, :11434/v1 for ollama).",
    )
    api_key_env: str | None = Field(
        None,
        description="Name of the environment variable holding the API key "
        "(default: the provider's usual one, e.g. OPENAI_API_KEY, DEEPSEEK_API_KEY, "
        "DASHSCOPE_API_KEY, or DEEPFOLDER_API_KEY).",
    )
    native_tools: bool | None = Field(
        None,
        description="Use native function calling; False uses the text <tool_call> "
        "protocol; None decides from the provider.",
    )
    context_window: int | None = Field(
        None, description="Model context window in tokens (None: the provider's known value)."
    )
    max_output_tokens: int = Field(4096, description="Upper bound on tokens per model reply.")
    temperature: float = Field(0.3, description="Sampling temperature.")
    timeout_s: float = Field(180.0, description="Timeout of one HTTP request, seconds.")
    max_retries: int = Field(
        5,
        description="Retries on 429, 5xx, timeouts and malformed 200 replies, with backoff; "
        "then the run stops with a model error (exit 3).",
    )
    max_requests_per_minute: float | None = Field(
        None,
        gt=0,
        description="Most requests per minute sent to the endpoint (chat and vision "
        "models), spaced evenly; in a batch the workers share it, and a Retry-After one "
        "of them gets holds them all. None: no limit.",
    )
    price_input_per_mtok: float | None = Field(
        None, description="Price in USD per million input tokens (overrides the built-in table)."
    )
    price_output_per_mtok: float | None = Field(
        None, description="Price in USD per million output tokens (overrides the table)."
    )
    vision_model: str | None = Field(
        None, description="Vision-capable model as 'provider:model' for images and frames."
    )
    vision_base_url: str | None = Field(None, description="Base URL for the vision model.")
    vision_api_key_env: str | None = Field(
        None, description="Environment variable holding the vision model's key."
    )


class EmbeddedModelSettings(BaseModel):
    name: Literal["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"] = Field(
        "qwen2.5-coder-1.5b",
        description="Which packaged GGUF to run in-process (see docs/benchmarks.md).",
    )
    n_threads: int | None = Field(
        None,
        description="CPU threads for llama.cpp (None: before every call, the cores that other "
        "work leaves free, at least 1, at most 4).",
    )
    n_ctx: int = Field(8192, description="Context window allocated for the embedded model.")
    model_dir: str | None = Field(
        None,
        description="Where the joined GGUF is kept (default: the deepfolder cache directory).",
    )


class IngestSettings(BaseModel):
    chunk_chars: int = Field(
        400, description="Target chunk size in characters (CJK characters count one each)."
    )
    chunk_overlap: int = Field(60, description="Characters shared by consecutive chunks.")
    max_file_mb: float = Field(512.0, description="Files larger than this are reported, not read.")
    ocr: bool = Field(True, description="OCR images, scanned PDF pages and video keyframes.")
    asr: bool = Field(True, description="Transcribe audio and the audio track of videos.")
    asr_language: str | None = Field(
        None, description="Force the speech language ('zh', 'en'); None detects it."
    )
    video_window_s: float = Field(30.0, description="Target length of a video/audio segment.")
    workers: int | None = Field(
        None, description="Processes for extraction (None: number of cores)."
    )
    json_max_depth: int = Field(
        64,
        description="JSON files and collections nested deeper than this are reported as "
        "failed, not parsed (a file of nested brackets would otherwise exhaust memory).",
    )
    json_max_item_mb: float = Field(
        32.0,
        description="An article of a collection larger than this is skipped with a warning.",
    )
    archive_max_mb: float = Field(
        2048.0,
        description="A ZIP archive (with the archives inside it) unpacking to more than "
        "this fails as a whole.",
    )
    archive_max_entries: int = Field(
        10_000,
        description="A ZIP archive (with the archives inside it) holding more members than "
        "this fails as a whole.",
    )
    archive_max_depth: int = Field(
        2, description="Archives nested deeper than this (a zip in a zip …) fail as a whole."
    )
    follow_external_symlinks: bool = Field(
        False,
        description="Read files whose symlink points outside the folder (off: they are "
        "skipped and reported, so a link to /etc/passwd or a secret is never indexed).",
    )


class RetrievalSettings(BaseModel):
    backend: Literal["embedded", "qdrant", "milvus"] = Field(
        "embedded",
        description="Index backend: the on-disk embedded one, a Qdrant server/cluster, or a "
        "Milvus server/cluster (pip extra `milvus`; without backend_url it runs embedded "
        "milvus-lite files in the index directory).",
    )
    backend_url: str | None = Field(
        None,
        description="URL of the distributed engine when backend is not 'embedded' "
        "(http://host:6333 for Qdrant, http://host:19530 for Milvus); unset: the engine's "
        "local mode under the index directory.",
    )
    dense: bool = Field(True, description="Use the multilingual dense embeddings.")
    mode: Literal["hybrid", "lexical", "dense"] = Field(
        "hybrid", description="Default search mode of the search tool."
    )
    k: int = Field(8, description="Default number of results of one search call.")
    min_docs: int = Field(2, description="Diversity: at least this many distinct sources.")
    max_per_doc: int = Field(3, description="Diversity: at most this many chunks per source.")
    rrf_k: int = Field(
        10,
        description="Reciprocal rank fusion constant (smaller: top ranks count more; 10 "
        "measured best on CMRC 2018, see docs/benchmarks.md).",
    )
    lexical_weight: float = Field(
        1.0, description="Weight of the lexical (BM25) ranking in reciprocal rank fusion."
    )
    dense_weight: float = Field(
        0.25,
        description="Weight of the dense (embedding) ranking in reciprocal rank fusion "
        "(the packaged embedder is weaker than BM25 on Chinese QA; it mainly adds "
        "cross-lingual and paraphrase matches).",
    )
    rerank: Literal["auto", "coverage", "cross-encoder", "none"] = Field(
        "auto",
        description="Reranking of the top hits: 'coverage' reorders them by how much of the "
        "query's characters and character pairs each contains (no model); 'cross-encoder' "
        "rescores the English passages of English (Latin-script) queries with the packaged "
        "English cross-encoder (extra `rerank-en`) and uses coverage for Chinese queries; "
        "'auto' is 'cross-encoder' when its package is installed, else 'coverage'; 'none' "
        "keeps the fused order. Measured in docs/benchmarks.md.",
    )
    rerank_depth: int = Field(20, description="How many top hits the reranker reorders.")
    cross_encoder_depth: int = Field(
        20,
        description="How many top hits of an English query the cross-encoder rescores "
        "(its cost grows with this: one passage pair is ~10-40 ms on 2 busy cores).",
    )
    cross_encoder_max_tokens: int = Field(
        256,
        description="Word pieces of query + passage the cross-encoder reads per pair (longer "
        "passages are cut; cost grows with this).",
    )
    rerank_weight: float = Field(
        2.0, description="Weight of query coverage against the (scaled) retrieval score."
    )
    translation_weight: float = Field(
        2.0,
        description="Weight of each query translation (search_many's translations=) "
        "against 1 for each original query when their results are fused; 2 measured best "
        "on Chinese questions about an English paper (docs/benchmarks.md).",
    )
    cross_script_weight: float = Field(
        0.0,
        description="Hybrid search: weight of the dense side's hits written in another "
        "script than the query (English passages for a Chinese query and the reverse), "
        "fused as a second ranking. 0: off, because it costs same-language search (weight "
        "1: SQuAD R@1 -0.017, CMRC -0.001; weight 2: CMRC -0.067); 1 is the measured "
        "compromise when the request's language differs from the material's and no model "
        "translates (docs/benchmarks.md).",
    )
    result_token_budget: int = Field(
        1500, description="Approximate token budget of one search tool observation."
    )


class AgentSettings(BaseModel):
    policy: Literal["auto", "agent", "pipeline"] = Field(
        "auto",
        description="'agent': free tool loop; 'pipeline': code-driven section pipeline "
        "(small models); 'auto': pipeline for embedded/small models, agent otherwise.",
    )
    max_turns: int = Field(24, description="Model turns before the agent must answer.")
    max_input_tokens_per_run: int = Field(
        400_000, description="Budget of input tokens for one run before it is cut short."
    )
    tool_result_keep_recent: int = Field(
        4, description="Tool results kept whole; older ones are shortened first."
    )
    section_evidence: int = Field(
        6, description="Pipeline policy: evidence items a section is written from."
    )


class ValidateSettings(BaseModel):
    max_revisions: int = Field(2, description="Rounds of revision after validation.")
    support_judge: Literal["auto", "model", "local"] = Field(
        "auto",
        description="Who checks that evidence supports a claim: the configured model, the "
        "local lexical+embedding method, or auto (model when it is a remote one).",
    )
    support_threshold: float = Field(
        0.35, description="Local support score at or above which a citation is 'supported'."
    )
    weak_threshold: float = Field(
        0.2, description="Local support score at or above which a citation is 'weak'."
    )
    max_judge_calls: int = Field(
        60,
        description="Most support-judge model calls per validation; further cited "
        "sentences get the local verdict.",
    )


class AnalysisSettings(BaseModel):
    wall_s: float = Field(60.0, description="run_python: wall-clock limit of one call, seconds.")
    cpu_s: float = Field(60.0, description="run_python: CPU-time limit of one call, seconds.")
    memory_mb: int = Field(2048, description="run_python: address-space limit of the worker, MiB.")
    output_chars: int = Field(
        4000, description="run_python: characters of output shown to the model."
    )
    require_isolation: bool = Field(
        True,
        description="run_python: refuse to run code unless every sandbox layer is in place "
        "(bubblewrap namespaces as nobody, no_new_privs, seccomp, read-only mounts, a fresh "
        "environment, resource limits); false runs it with the layers this machine allows.",
    )


class McpServerSettings(BaseModel):
    """One MCP tool server the agent may use: a command (stdio) or a URL (HTTP)."""

    name: str = Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$",
        description="The server's name: in the trace, in its evidence's locators, and the "
        "prefix of a tool whose name clashes with another's.",
    )
    command: str | None = Field(None, description="Stdio: the program that starts the server.")
    args: list[str] = Field(default_factory=list, description="Stdio: the program's arguments.")
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Stdio: environment variables for the server (no secrets: they are "
        "written to settings.json; name them in pass_env instead).",
    )
    pass_env: list[str] = Field(
        default_factory=list,
        description="Stdio: names of deepfolder's environment variables handed to the server.",
    )
    cwd: str | None = Field(None, description="Stdio: the server's working directory.")
    url: str | None = Field(None, description="HTTP: the server's streamable-HTTP endpoint.")
    bearer_token_env: str | None = Field(
        None, description="HTTP: environment variable holding a bearer token for the server."
    )
    tools: list[str] | None = Field(
        None, description="Only these tools of the server (default: all it lists)."
    )
    timeout_s: float = Field(60.0, description="Seconds to wait for one tool call's result.")

    model_config = {"extra": "forbid"}

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerSettings:
        if (self.command is None) == (self.url is None):
            raise ValueError(
                f"MCP server {self.name!r}: give either 'command' (stdio) or 'url' (HTTP)"
            )
        return self


class ToolsSettings(BaseModel):
    mcp_servers: list[McpServerSettings] = Field(
        default_factory=list,
        description="MCP tool servers whose tools the agent is offered next to its own, e.g. "
        '[{"name": "web", "command": "uvx", "args": ["mcp-server-fetch"]}] or '
        '[{"name": "kb", "url": "http://127.0.0.1:8000/mcp", "tools": ["lookup"]}].',
    )
    mcp_connect_timeout_s: float = Field(
        30.0, description="Seconds to wait for an MCP tool server to start and list its tools."
    )


class Settings(BaseModel):
    model: ModelSettings = Field(default_factory=ModelSettings)
    embedded: EmbeddedModelSettings = Field(default_factory=EmbeddedModelSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    validate_: ValidateSettings = Field(default_factory=ValidateSettings, alias="validate")
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    tools: ToolsSettings = Field(default_factory=ToolsSettings)
    cache_dir: str | None = Field(
        None,
        description="Index and model cache (default $DEEPFOLDER_CACHE or ~/.cache/deepfolder).",
    )

    model_config = {"populate_by_name": True}

    def cache_path(self) -> Path:
        base = self.cache_dir or os.environ.get("DEEPFOLDER_CACHE")
        return Path(base).expanduser() if base else Path.home() / ".cache" / "deepfolder"

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def settings_hash(self) -> str:
        data = self.to_json_dict()
        if data["tools"] == ToolsSettings().model_dump(mode="json"):
            del data["tools"]  # runs without MCP servers keep the hash they had before them
        return _digest(data)

    def ingest_hash(self) -> str:
        """Identity of an index: everything that changes what ingest produces."""
        return _digest(
            {
                "ingest": self.ingest.model_dump(mode="json", exclude={"workers"}),
                "dense": self.retrieval.dense,
                "backend": self.retrieval.backend,
                "format": INDEX_FORMAT_VERSION,
            }
        )


INDEX_FORMAT_VERSION = 2
"""Bump when the on-disk index layout or an extractor's output changes."""

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "fast": {
        "ingest": {"asr": False},
        "retrieval": {"dense": False},
        "validate": {"max_revisions": 1},
    },
    "thorough": {"agent": {"max_turns": 40}, "validate": {"max_revisions": 3}},
}


def _digest(data: Any) -> str:
    blob = json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "DEEPFOLDER_MODEL": ("model", "model"),
    "DEEPFOLDER_BASE_URL": ("model", "base_url"),
    "DEEPFOLDER_API_KEY_ENV": ("model", "api_key_env"),
    "DEEPFOLDER_VISION_MODEL": ("model", "vision_model"),
    "DEEPFOLDER_VISION_BASE_URL": ("model", "vision_base_url"),
    "DEEPFOLDER_THREADS": ("embedded", "n_threads"),
    "DEEPFOLDER_EMBEDDED_MODEL": ("embedded", "name"),
    "DEEPFOLDER_POLICY": ("agent", "policy"),
}


OTHER_ENV_VARS: dict[str, str] = {
    "DEEPFOLDER_CONFIG": "the config file.",
    "DEEPFOLDER_CACHE": "the cache directory (index, joined model files).",
    "DEEPFOLDER_API_KEY": "the API key when neither `model.api_key_env` nor the provider's "
    "usual variable is set.",
    "DEEPFOLDER_ALLOW_MODEL_REQUESTS": "`0` refuses every remote model request (the test "
    "suite sets it).",
    "DEEPFOLDER_RATE_LIMIT_FILE": "the request-rate state shared by a batch's workers "
    "(set by `deepfolder batch`; see `model.max_requests_per_minute`).",
    "DEEPFOLDER_TEST_DATA": "the test suite's shared material (default `../shared/data`).",
    "DEEPFOLDER_TEST_QDRANT_URL": "a Qdrant server the index tests also run against.",
    "DEEPFOLDER_MCP_TOKEN": "the bearer token `deepfolder mcp --transport http` requires "
    "when it listens on an address other than loopback.",
}
"""``DEEPFOLDER_*`` variables that are not settings but are read elsewhere (llm/guard.py,
llm/openai_compat.py, the ingest cache, the tests): never taken for a mistyped setting."""

ENV_PREFIX = "DEEPFOLDER_"

KEY_ENV_SETTINGS = (("model", "api_key_env"), ("model", "vision_api_key_env"))
"""Settings that name an environment variable, which may itself start with DEEPFOLDER_."""


class SettingsError(ValueError):
    pass


def _field_models(model: type[BaseModel]) -> dict[str, type[BaseModel] | None]:
    """Keys a config file may use at this level (alias and name), with the section model
    of those that are sections."""
    keys: dict[str, type[BaseModel] | None] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        section = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
        keys[name] = section
        if field.alias:
            keys[field.alias] = section
    return keys


def _public_keys(model: type[BaseModel]) -> list[str]:
    """Keys as docs/settings.md spells them (the alias where there is one)."""
    return [field.alias or name for name, field in model.model_fields.items()]


def _dotted_keys(model: type[BaseModel] = Settings, prefix: str = "") -> list[str]:
    out: list[str] = []
    for key in _public_keys(model):
        section = _field_models(model)[key]
        out += _dotted_keys(section, f"{prefix}{key}.") if section else [f"{prefix}{key}"]
    return out


def _nearest_key(name: str, model: type[BaseModel], prefix: str) -> str:
    """' — did you mean …?' for an unknown key: a sibling first, then the same name in
    another section, else the keys this level allows."""
    dotted = _dotted_keys()
    if name in dotted:  # {"retrieval.k": 5} instead of {"retrieval": {"k": 5}}
        section, _, leaf = name.rpartition(".")
        return f' — nest it: {{"{section}": {{"{leaf}": …}}}}'
    siblings = _public_keys(model)
    close = difflib.get_close_matches(name, siblings, n=1)
    if close:
        return f" — did you mean '{prefix}{close[0]}'?"
    leaves = {key.rpartition(".")[2]: key for key in reversed(dotted)}
    close = difflib.get_close_matches(name, leaves, n=1)
    if close:
        return f" — did you mean '{leaves[close[0]]}'?"
    where = f"of '{prefix[:-1]}'" if prefix else "at the top level"
    return f" (the keys {where} are: {', '.join(siblings)})"


def _unknown_keys(
    data: dict[str, Any], source: str, model: type[BaseModel] = Settings, prefix: str = ""
) -> list[str]:
    """One message per key of ``data`` (from ``source``) that the settings tree lacks."""
    known = _field_models(model)
    problems: list[str] = []
    for key, value in data.items():
        if key not in known:
            what = "section" if not prefix and isinstance(value, dict) else "key"
            problems.append(
                f"settings: unknown {what} '{prefix}{key}' {source}"
                + _nearest_key(key, model, prefix)
            )
        elif (section := known[key]) is not None and isinstance(value, dict):
            problems += _unknown_keys(value, source, section, f"{prefix}{key}.")
    return problems


def _unknown_env_vars(env: Mapping[str, str], data: dict[str, Any]) -> list[str]:
    """One message per set ``DEEPFOLDER_*`` variable deepfolder does not read."""
    named = {
        value
        for section, key in KEY_ENV_SETTINGS
        if isinstance(value := (data.get(section) or {}).get(key), str)
    }
    known = [*ENV_OVERRIDES, *OTHER_ENV_VARS]
    problems = []
    for var in sorted(env):
        if not var.startswith(ENV_PREFIX) or not env[var] or var in known or var in named:
            continue
        message = f"settings: unknown environment variable {var}"
        suffix = var.removeprefix(ENV_PREFIX)  # the shared prefix would make all look close
        close = difflib.get_close_matches(suffix, [k.removeprefix(ENV_PREFIX) for k in known], 1)
        setting = [key for key in _dotted_keys() if key.rpartition(".")[2] == suffix.lower()]
        if close:
            message += f" — did you mean {ENV_PREFIX}{close[0]}?"
        elif setting:
            message += f" — no variable sets '{setting[0]}'; put it in the config file"
        else:
            message += (
                f" — the settings variables are {', '.join(ENV_OVERRIDES)}; other settings "
                "go in the config file (docs/settings.md)"
            )
        problems.append(message)
    return problems


def load_settings(
    *,
    preset: str = "default",
    config_path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve the settings from every source; ``SettingsError`` names a bad preset, a
    missing or malformed config file, unknown keys or variables, or an invalid value."""
    env = os.environ if environ is None else environ
    if preset not in PRESETS:
        raise SettingsError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    data: dict[str, Any] = dict(PRESETS[preset])
    problems: list[str] = []
    path = config_path or env.get("DEEPFOLDER_CONFIG") or None  # set but empty: unset
    default_path = Path.home() / ".config" / "deepfolder" / "config.json"
    if path is None and default_path.exists():
        path = default_path
    if path is not None:
        cfg = Path(path).expanduser()
        try:
            loaded = json.loads(cfg.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise SettingsError(f"config file {cfg} does not exist") from exc
        except OSError as exc:
            raise SettingsError(f"config file {cfg} cannot be read: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise SettingsError(
                f"config file {cfg} is not valid JSON (line {exc.lineno}): {exc.msg}"
            ) from exc
        if not isinstance(loaded, dict):
            raise SettingsError(f"config file {cfg} must hold a JSON object of settings")
        problems += _unknown_keys(loaded, f"in {cfg}")
        data = _deep_merge(data, loaded)
    for var, (section, key) in ENV_OVERRIDES.items():
        if env.get(var):
            data = _deep_merge(data, {section: {key: env[var]}})
    if overrides:
        problems += _unknown_keys(overrides, "in the command-line settings")
        data = _deep_merge(data, overrides)
    problems += _unknown_env_vars(env, data)
    if problems:
        raise SettingsError("\n".join(problems))
    try:
        return Settings.model_validate(data)
    except Exception as exc:  # pydantic's message names the field and the bad value
        raise SettingsError(f"invalid settings: {exc}") from exc


def is_loopback(host: str) -> bool:
    """Whether a listening address is this machine only (``deepfolder serve`` and
    ``deepfolder mcp --transport http`` ask for a token on any other)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
