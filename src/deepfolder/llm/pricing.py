"""What a run's tokens cost, in USD.

PRICES_CHECKED is the date the table was last compared with the providers' public price
pages. Prices change (and DeepSeek/Qwen have off-peak and tiered prices that are not
modelled here): set ``model.price_input_per_mtok`` / ``model.price_output_per_mtok`` to
override. Local models (the embedded one, and local servers) cost 0.0; an unknown remote
model's cost is None ("unknown"), never a guess.
"""

from __future__ import annotations

from deepfolder.records import Usage
from deepfolder.settings import Settings

PRICES_CHECKED = "2025-06 (list prices; they change — override in settings)"

PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    # model: (USD per 1M input tokens, USD per 1M output tokens)
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "deepseek-chat": (0.27, 1.10),
    "deepseek-reasoner": (0.55, 2.19),
    "qwen-plus": (0.40, 1.20),
    "qwen-max": (1.60, 6.40),
    "qwen-turbo": (0.05, 0.20),
}

LOCAL_PROVIDERS = frozenset({"embedded", "vllm", "sglang", "ollama", "llamacpp", "fake"})


def price_of(model_name: str) -> tuple[float, float] | None:
    """(input, output) USD per million tokens from the table; provider prefix and
    date suffixes are ignored (``openai:gpt-4o-2024-08-06`` → ``gpt-4o``)."""
    model = model_name.split(":", 1)[1] if ":" in model_name else model_name
    model = model.rsplit("/", 1)[-1].lower()
    if model in PRICES_PER_MTOK:
        return PRICES_PER_MTOK[model]
    for known in sorted(PRICES_PER_MTOK, key=len, reverse=True):  # gpt-4o-mini before gpt-4o
        if model.startswith(known + "-"):
            return PRICES_PER_MTOK[known]
    return None


def is_local_model(model_name: str) -> bool:
    provider = model_name.split(":", 1)[0] if ":" in model_name else model_name
    return provider in LOCAL_PROVIDERS


def cost_of(model_name: str, usage: Usage, settings: Settings | None = None) -> float | None:
    """USD for ``usage`` on ``model_name``: settings override → local 0.0 → table → None."""
    model_settings = settings.model if settings is not None else None
    if model_settings is not None and (
        model_settings.price_input_per_mtok is not None
        or model_settings.price_output_per_mtok is not None
    ):
        table = price_of(model_name) or (0.0, 0.0)
        price_in = model_settings.price_input_per_mtok
        price_out = model_settings.price_output_per_mtok
        prices = (
            table[0] if price_in is None else price_in,
            table[1] if price_out is None else price_out,
        )
    elif is_local_model(model_name):
        return 0.0
    else:
        found = price_of(model_name)
        if found is None:
            return None
        prices = found
    return (usage.input_tokens * prices[0] + usage.output_tokens * prices[1]) / 1_000_000
