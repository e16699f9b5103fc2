"""ccproxy: the Anthropic Messages API, exactly right for the real Claude Code CLI.

The translation core (types, request/response/stream translation, errors, model mapping) is pure:
no httpx, starlette or asyncio imports. I/O lives in ``app`` (the ASGI app) and ``upstream`` (the
HTTP client with an injectable transport).
"""

__version__ = "0.1.0"
