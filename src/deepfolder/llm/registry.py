"""Build the chat model the settings describe.

- ``"embedded"`` → :class:`EmbeddedModel` (the packaged local GGUF);
- ``"provider:model"`` → :class:`OpenAIChatModel`, wrapped in :class:`TextToolModel` when
  ``model.native_tools`` is False or the provider has no native tools;
- ``"fake:…"`` is refused: fake models are built directly in tests.
"""

from __future__ import annotations

from deepfolder.llm.base import ChatModel, ModelConfigError
from deepfolder.llm.packaged_weights import PACKAGED_MODELS
from deepfolder.llm.text_protocol import TextToolModel
from deepfolder.settings import Settings


def create_chat_model(settings: Settings) -> ChatModel:
    return _create(
        settings,
        settings.model.model,
        base_url=settings.model.base_url,
        api_key_env=settings.model.api_key_env,
    )


def create_vision_model(settings: Settings) -> ChatModel | None:
    """The vision-capable model from ``model.vision_*``, or None when none is configured."""
    spec = settings.model.vision_model
    if not spec:
        return None
    if spec == "embedded":
        raise ModelConfigError(
            "model.vision_model cannot be 'embedded': the packaged local model reads no "
            "images. Set it to a vision-capable 'provider:model' (e.g. 'openai:gpt-4o-mini')."
        )
    return _create(
        settings,
        spec,
        base_url=settings.model.vision_base_url,
        api_key_env=settings.model.vision_api_key_env,
    )


def _create(
    settings: Settings, spec: str, *, base_url: str | None, api_key_env: str | None
) -> ChatModel:
    spec = spec.strip()
    if spec == "embedded" or spec.startswith("embedded:"):
        from deepfolder.llm.embedded import EmbeddedModel

        if spec.startswith("embedded:"):
            name = spec.split(":", 1)[1]
            if name not in PACKAGED_MODELS:
                raise ModelConfigError(
                    f"unknown embedded model {name!r}; choose one of {', '.join(PACKAGED_MODELS)}"
                )
            settings = settings.model_copy(
                update={"embedded": settings.embedded.model_copy(update={"name": name})}
            )
        return EmbeddedModel(settings)
    if spec.startswith("fake:") or spec == "fake":
        raise ModelConfigError(
            f"model {spec!r}: fake models are for tests and cannot be built from settings; "
            "construct deepfolder.llm.fake.ScriptedModel / FunctionModel directly."
        )
    from deepfolder.llm.openai_compat import OpenAIChatModel
    from deepfolder.llm.rate_limit import shared_pacer

    cfg = settings.model
    model = OpenAIChatModel(
        spec,
        base_url=base_url,
        api_key_env=api_key_env,
        native_tools=cfg.native_tools,
        context_window=cfg.context_window,
        timeout_s=cfg.timeout_s,
        max_retries=cfg.max_retries,
        default_temperature=cfg.temperature,
        default_max_tokens=cfg.max_output_tokens,
        pacer=shared_pacer(cfg.max_requests_per_minute),
    )
    if not model.supports_native_tools:
        return TextToolModel(model)
    return model
