"""The chat model that writes LLM answers: one LangChain chat model per LLM_PROVIDER.

Each provider's package is an optional extra and is imported only here, only when that
provider is chosen, so `LLM_PROVIDER=none` (the default) needs none of them installed.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from strategy_bot.settings import Settings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel


class LLMUnavailable(RuntimeError):
    """The configured provider cannot be used (package missing, setting missing); the message says how to fix it."""


@dataclass(frozen=True)
class Provider:
    module: str  # the LangChain integration package, as imported
    class_name: str
    extra: str  # the strategy-bot extra that installs it
    default_model: str
    kwargs: Callable[[Settings, str], dict[str, Any]]  # the constructor arguments for these settings


def _openai_kwargs(settings: Settings, model: str) -> dict[str, Any]:
    api_key = settings.llm_api_key
    if not api_key and settings.llm_base_url:
        api_key = "not-needed"  # local OpenAI-compatible servers (vLLM, llama.cpp) take any key
    if not api_key:
        raise LLMUnavailable("LLM_PROVIDER=openai needs LLM_API_KEY (or OPENAI_API_KEY), "
                             "or LLM_BASE_URL / OPENAI_BASE_URL for a local OpenAI-compatible server")
    kwargs = {"model": model, "api_key": api_key, "base_url": settings.llm_base_url or None,
              "temperature": settings.llm_temperature, "timeout": settings.llm_timeout_s,
              "max_retries": settings.llm_max_retries, "max_tokens": settings.llm_max_tokens}
    if settings.llm_base_url:
        # langchain-openai sends the cap as `max_completion_tokens` only; llama.cpp, vLLM and other
        # compatible servers read `max_tokens` (measured: llama.cpp ignored the cap and wrote 2,243
        # tokens). OpenAI itself gets `max_completion_tokens` alone: reasoning models refuse `max_tokens`.
        kwargs["extra_body"] = {"max_tokens": settings.llm_max_tokens}
    return kwargs


def _anthropic_kwargs(settings: Settings, model: str) -> dict[str, Any]:
    if not settings.llm_api_key:
        raise LLMUnavailable("LLM_PROVIDER=anthropic needs LLM_API_KEY (or ANTHROPIC_API_KEY)")
    return {"model": model, "api_key": settings.llm_api_key, "base_url": settings.llm_base_url or None,
            "temperature": settings.llm_temperature, "timeout": settings.llm_timeout_s,
            "max_retries": settings.llm_max_retries, "max_tokens": settings.llm_max_tokens}


def _ollama_kwargs(settings: Settings, model: str) -> dict[str, Any]:
    # Ollama has no retries of its own; its httpx client takes the timeout.
    return {"model": model, "base_url": settings.llm_base_url or None, "temperature": settings.llm_temperature,
            "num_predict": settings.llm_max_tokens, "client_kwargs": {"timeout": settings.llm_timeout_s}}


PROVIDERS: dict[str, Provider] = {
    "openai": Provider("langchain_openai", "ChatOpenAI", "openai", "gpt-4o-mini", _openai_kwargs),
    "anthropic": Provider("langchain_anthropic", "ChatAnthropic", "anthropic", "claude-haiku-4-5",
                          _anthropic_kwargs),
    "ollama": Provider("langchain_ollama", "ChatOllama", "ollama", "llama3.1", _ollama_kwargs),
}


def model_name(settings: Settings) -> str:
    """LLM_MODEL, or the provider's default."""
    return settings.llm_model or PROVIDERS[settings.llm_provider].default_model


def chat_model(settings: Settings) -> "BaseChatModel":
    """The chat model for LLM_PROVIDER; raises LLMUnavailable with the fix when it cannot be built."""
    provider = PROVIDERS.get(settings.llm_provider)
    if provider is None:
        raise LLMUnavailable(f"LLM_PROVIDER={settings.llm_provider!r} has no chat model "
                             f"(choose one of {', '.join(PROVIDERS)})")
    kwargs = provider.kwargs(settings, model_name(settings))
    install = f"pip install 'strategy-bot[{provider.extra}]'"
    try:
        module = importlib.import_module(provider.module)
    except ImportError as exc:
        if getattr(exc, "name", None) == provider.module:  # the package itself is not installed
            raise LLMUnavailable(f"LLM_PROVIDER={settings.llm_provider} needs the "
                                 f"{provider.module.replace('_', '-')} package: {install}") from None
        raise LLMUnavailable(f"LLM_PROVIDER={settings.llm_provider}: {provider.module} is installed but does "
                             f"not import ({exc}); reinstall it: {install}") from None
    return getattr(module, provider.class_name)(**kwargs)


def check(settings: Settings) -> None:
    """Raise LLMUnavailable now (at start-up) rather than on the first question, when LLM_PROVIDER cannot work."""
    if settings.llm_provider != "none":
        chat_model(settings)
