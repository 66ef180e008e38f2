from __future__ import annotations

import pytest

from deepfolder.llm.base import ModelConfigError
from deepfolder.llm.openai_compat import OpenAIChatModel
from deepfolder.llm.pricing import cost_of, price_of
from deepfolder.llm.registry import create_chat_model, create_vision_model
from deepfolder.llm.text_protocol import TextToolModel
from deepfolder.records import Usage
from deepfolder.settings import Settings


def settings_for(**model: object) -> Settings:
    return Settings.model_validate({"model": model})


def test_remote_model_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    model = create_chat_model(settings_for(model="openai:gpt-4o-mini", timeout_s=12, max_retries=2))
    assert isinstance(model, OpenAIChatModel)
    assert model.context_window == 128_000
    assert model.timeout_s == 12 and model.max_retries == 2
    assert model.supports_native_tools


def test_text_protocol_when_native_tools_off() -> None:
    model = create_chat_model(settings_for(model="ollama:qwen2.5:7b", native_tools=False))
    assert isinstance(model, TextToolModel)
    assert isinstance(model.inner, OpenAIChatModel)
    assert model.name == "ollama:qwen2.5:7b"


def test_custom_needs_base_url_and_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "k")
    model = create_chat_model(
        settings_for(model="custom:m", base_url="http://10.0.0.5:9000/v1", api_key_env="MY_KEY")
    )
    assert isinstance(model, OpenAIChatModel)
    assert model.base_url == "http://10.0.0.5:9000/v1"


def test_fake_models_are_refused() -> None:
    with pytest.raises(ModelConfigError, match="fake models are for tests"):
        create_chat_model(settings_for(model="fake:scripted"))


def test_vision_model(monkeypatch: pytest.MonkeyPatch) -> None:
    assert create_vision_model(Settings()) is None
    monkeypatch.setenv("VKEY", "k")
    vision = create_vision_model(
        settings_for(vision_model="openai:gpt-4o", vision_api_key_env="VKEY")
    )
    assert isinstance(vision, OpenAIChatModel) and vision.model == "gpt-4o"
    with pytest.raises(ModelConfigError, match="reads no images"):
        create_vision_model(settings_for(vision_model="embedded"))


def test_unknown_embedded_name() -> None:
    with pytest.raises(ModelConfigError, match="unknown embedded model"):
        create_chat_model(settings_for(model="embedded:llama-70b"))


def test_prices() -> None:
    usage = Usage(1_000_000, 500_000)
    assert cost_of("openai:gpt-4o-mini", usage) == pytest.approx(0.15 + 0.30)
    assert price_of("openai:gpt-4o-2024-08-06") == price_of("gpt-4o")
    assert price_of("openai:gpt-4o-mini-2024-07-18") == price_of("gpt-4o-mini")
    assert cost_of("embedded", usage) == 0.0
    assert cost_of("ollama:qwen2.5:7b", usage) == 0.0
    assert cost_of("openai:some-future-model", usage) is None
    override = settings_for(price_input_per_mtok=1.0, price_output_per_mtok=2.0)
    assert cost_of("openai:some-future-model", usage, override) == pytest.approx(2.0)
    half = settings_for(price_input_per_mtok=0.0)
    assert cost_of("deepseek:deepseek-chat", usage, half) == pytest.approx(0.55)
