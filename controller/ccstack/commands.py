"""The controller's commands: each does its work and returns data; ``ccstack.cli`` prints it.

    prepare(paths, UpRequest, environ) -> (Mode, Rendered, State)   the generated files, no containers
    up(paths, UpRequest) -> Started        prepare, validate, `docker compose up --wait`
    down(paths, volumes=...)               the project removed, its token and state forgotten
    logs(paths, services, ...) -> int      `docker compose logs` (streamed)
    build(paths, services, build_args)     `docker compose build` (the sandbox with policies/toolchain.yaml)

What a mode needs is read from its :class:`~ccstack.modes.Mode` fields (``local_model``, ``key_env``,
``unreachable_hint``, ...), never from its name.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ccstack import local_model, progress, server_info, toolchain, up_wait
from ccstack.checks import agent_runtime, check_docker, check_port_free, require_runtime
from ccstack.compose import run_compose, service_table, validate
from ccstack.egress import render_squid_conf
from ccstack.errors import StackError
from ccstack.modes import Mode, SpendBudget, parse_mode
from ccstack.policy import load_policies
from ccstack.pool import Balance, load_pool
from ccstack.render import Rendered, RenderOptions, render, to_yaml
from ccstack.split import SplitSpec
from ccstack.state import (
    DEFAULT_PROJECT,
    Paths,
    State,
    invoking_ids,
    load_state,
    remove_dotenv,
    resolve_key,
    save_state,
    write_dotenv,
    write_secret,
)


@dataclass(frozen=True)
class UpRequest:
    mode: str
    model: str | None = None  # local: path / hf: ref / registry name; others: upstream model name
    side_model: str | None = None
    chat_template: str | None = None  # local: template name in backends/llama-server/templates
    upstream: str | None = None
    upstream_kind: str | None = None  # modes for a user's server: openai (default) or anthropic
    key_file: str | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    prompt_profile: str | None = None  # the proxy's --prompt-profile (full, lean); None: its default
    agent_tools: str | None = None  # the CLI's tools (comma-separated, or "default"); None: the mode's
    background_tasks: bool | None = None  # Claude Code's background tasks; None: the mode's
    silent_turn_reminder: bool | None = None  # Claude Code's "the user hasn't heard…"; None: the mode's
    repeat_limit: int | None = None  # the proxy's repeat guard (0: off); None: the mode's
    auto_memory: bool | None = None  # Claude Code's auto memory; None: the mode's
    publish_port: int | None = None
    project: str = DEFAULT_PROJECT
    extra_files: tuple[str, ...] = ()
    wait_timeout: int = 600
    fetch: bool = True
    runtime: str | None = None  # the agent's OCI runtime (--runtime); None: policies/sandbox.yaml's
    trace: bool = False  # the proxy writes a trace per request into <state>/traces (`ccstack trace`)
    slots: int | None = None  # llama-server's slots (--slots); None: 2
    replicas: int | None = (
        None  # pool: llama-server replicas in the stack (--replicas); None: backends.yaml's
    )
    backends: tuple[str, ...] = ()  # pool: servers elsewhere (--backend URL); empty: backends.yaml's
    budget: SpendBudget = field(default_factory=SpendBudget)  # the proxy's spend guard (--budget-...)
    balance: Balance | None = None  # pool: session or roundrobin (--balance); None: backends.yaml's
    rpc_workers: int | None = None  # split: rpc-server containers (--rpc-workers); None: 2
    rpc: tuple[str, ...] = ()  # split: rpc-servers elsewhere (--rpc HOST:PORT)


@dataclass(frozen=True)
class Started:
    """What `up` did: the state, and what the user should read (warnings to stderr, notices)."""

    state: State
    warnings: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()


def _local_model_options(paths: Paths, req: UpRequest, opts: RenderOptions) -> RenderOptions:
    """The model llama-server loads: resolved (fetched), its chat template, the default link."""
    choice = local_model.resolve_model(req.model, fetch=req.fetch)
    template = local_model.chat_template(choice, req.chat_template)
    if choice.file is None and choice.hub is None:  # `render` without fetching: the default place
        choice = dataclasses.replace(choice, file=str(paths.default_model_link))
    if choice.file:
        local_model.link_default(paths.default_model_link, choice.file)
    return dataclasses.replace(
        opts, model=choice.name, model_file=choice.file, hub_model=choice.hub, chat_template=template
    )


def _user_server_options(mode: Mode, req: UpRequest, opts: RenderOptions) -> tuple[RenderOptions, list[str]]:
    """A user's server (openai, lmstudio, ollama): its context window and model, asked from the server
    where --context-window / --model do not say them; warnings for what stays unknown."""
    url = req.upstream or mode.upstream
    if req.context_window and req.model:
        return opts, []
    info = server_info.ask_server(server_info.host_view(url), req.model)
    if not info.reachable:
        return opts, [
            f"cannot ask {url} for its context window and models ({info.error}); "
            f"{mode.unreachable_hint}. Without --context-window Claude Code assumes its own window"
        ]
    warnings: list[str] = []
    model = req.model
    if model is None:
        if len(info.models) == 1:
            model = info.models[0]
        elif info.models:
            warnings.append(
                f"the server serves {len(info.models)} models ({', '.join(info.models[:8])}): pick one "
                "with --model, else Claude Code's model names are sent as they are"
            )
    window = req.context_window
    if window is None and info.window is not None:
        window = info.window.tokens
        if info.window.note:
            warnings.append(f"context window {window} from {info.window.source}: {info.window.note}")
    elif window is None:
        warnings.append(
            f"{url} does not say its context window (asked: {', '.join(info.asked)}): pass --context-window N"
        )
    return dataclasses.replace(opts, model=model, context_window=window), warnings


def prepare(paths: Paths, req: UpRequest, environ: Mapping[str, str]) -> tuple[Mode, Rendered, State]:
    """Resolve everything and write the generated files; no containers are touched."""
    mode = parse_mode(req.mode)
    if mode.needs_upstream and not req.upstream:
        raise StackError(
            f"mode {mode.name} needs --upstream URL: the server's base URL as the proxy container sees it "
            "(a server on this host: http://host.docker.internal:PORT/v1)"
        )
    if req.upstream_kind and not mode.user_server:
        raise StackError(
            f"--upstream-kind is for a server you name (openai, lmstudio, ollama), not mode {mode.name}"
        )
    if (req.replicas is not None or req.backends or req.balance) and not mode.pool:
        raise StackError(f"--replicas, --backend and --balance are for the pool mode, not mode {mode.name}")
    if (req.rpc_workers is not None or req.rpc) and not mode.split:
        raise StackError(f"--rpc-workers and --rpc are for the split mode, not mode {mode.name}")
    if req.slots is not None and not mode.local_model:
        raise StackError(f"--slots is for modes that run llama-server, not mode {mode.name}")
    try:
        policies = load_policies(paths.repo / "policies")
        spec = (
            load_pool(paths.repo / "policies").with_flags(
                replicas=req.replicas, servers=req.backends, balance=req.balance
            )
            if mode.pool
            else None
        )
        rpc = SplitSpec(2 if req.rpc_workers is None else req.rpc_workers, req.rpc) if mode.split else None
    except ValueError as e:  # the policy files, or what the flags say of the pool and the rpc-servers
        raise StackError(f"bad policy: {e}") from None
    uid, gid = invoking_ids(environ)
    opts = RenderOptions(
        uid=uid,
        gid=gid,
        state_dir=str(paths.state_dir),
        upstream=req.upstream,
        upstream_kind=req.upstream_kind,
        upstream_key=bool(req.key_file) and not mode.key_env,
        model=None if mode.local_model else req.model,
        side_model=req.side_model,
        context_window=req.context_window,
        max_output_tokens=req.max_output_tokens,
        prompt_profile=req.prompt_profile,
        agent_tools=req.agent_tools,
        background_tasks=req.background_tasks,
        silent_turn_reminder=req.silent_turn_reminder,
        repeat_limit=req.repeat_limit,
        auto_memory=req.auto_memory,
        publish_port=req.publish_port,
        runtime=agent_runtime(paths.repo / "policies", req.runtime),
        trace_dir=str(paths.state_dir / "traces") if req.trace else None,
        slots=req.slots,
        pool=spec,
        split=rpc,
        compose_file=str(paths.compose_file),
        budget=req.budget,
    )
    warnings: list[str] = []
    if req.trace and req.fetch:  # `up`: the directory the proxy writes to, as the invoking user
        traces = paths.state_dir / "traces"
        traces.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.geteuid() == 0:
            os.chown(traces, uid, gid)
    if mode.local_model and (spec is None or spec.replicas):  # a pool of servers elsewhere needs none
        opts = _local_model_options(paths, req, opts)
    if mode.user_server and req.fetch:  # `render` asks no server
        opts, warnings = _user_server_options(mode, req, opts)
    if (mode.key_env or req.key_file) and req.fetch:  # `render` needs no key
        write_secret(paths.upstream_key, resolve_key(mode, req.key_file, environ))
    if not paths.token.exists():
        write_secret(paths.token, secrets.token_urlsafe(32))
    if policies.egress.enabled:
        paths.squid_conf.parent.mkdir(parents=True, exist_ok=True)
        paths.squid_conf.write_text(render_squid_conf(policies.egress.domains), encoding="utf-8")
    try:
        rendered = render(mode, opts, policies)
    except ValueError as e:
        raise StackError(str(e)) from None
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.files.items():
        (paths.state_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (paths.state_dir / name).write_text(text, encoding="utf-8")
    overlay = paths.overlay(mode.name)
    overlay.write_text(to_yaml(rendered, mode), encoding="utf-8")
    state = State(
        mode=mode.name,
        project=req.project,
        files=[str(paths.compose_file), str(overlay), *req.extra_files],
        profiles=list(rendered.profiles),
        services=list(rendered.services),
        env=rendered.env,
        publish_port=req.publish_port,
        extra={
            "protected": [p.spec for p in policies.mounts.protected],
            "model": opts.model or mode.default_model,
            "runtime": opts.runtime,
            "context_window": opts.context_window,
            "model_file": opts.model_file,
            "hub_model": opts.hub_model,
            "warnings": warnings,
        },
    )
    return mode, rendered, state


def up(paths: Paths, req: UpRequest, environ: Mapping[str, str] | None = None) -> Started:
    env = os.environ if environ is None else environ
    check_docker()
    warnings = require_runtime(agent_runtime(paths.repo / "policies", req.runtime))
    if req.publish_port is not None:
        check_port_free(req.publish_port)
    _mode, _rendered, state = prepare(paths, req, env)
    warnings += state.extra.get("warnings", [])
    validate(paths, state)
    save_state(paths, state)
    notice = write_dotenv(paths, state)
    args = ["up", "--detach", "--wait", "--wait-timeout", str(req.wait_timeout), *state.services]
    with progress.waiting(f"starting mode {state.mode}") as update:  # a spinner: what loads, how long
        r = up_wait.compose_up(paths, state, args, update)
    if r.returncode != 0:
        raise StackError(
            f"the stack did not come up (mode {state.mode}):\n{r.stderr.strip()[-3000:]}\n"
            f"{service_table(paths, state)}\nSee `ccstack logs` for details."
        )
    return Started(state, tuple(warnings), (notice,) if notice else ())


def down(paths: Paths, *, volumes: bool = False, project: str | None = None) -> str:
    """Stop and remove the stack (and with ``volumes`` its named volumes); what was done, in words. A
    stack that is not up has nothing to stop, but ``--volumes`` still forgets its volumes (`project`'s)."""
    check_docker()
    try:
        state = load_state(paths)
    except StackError:
        if not (volumes and project):
            raise
        removed = remove_project_volumes(project)
        return f"the stack was not up; removed {len(removed)} volume(s) of project {project}: " + (
            ", ".join(removed) or "none"
        )
    args = ["down", "--remove-orphans"] + (["--volumes"] if volumes else [])
    # With the agent's profile, so its one-off containers and its state volume are part of the project.
    everything = dataclasses.replace(state, profiles=[*state.profiles, "agent"])
    run_compose(paths, everything, args, env={"CCSANDBOX_WORKDIR": str(paths.state_dir)})
    for f in (paths.token, paths.state_file):
        f.unlink(missing_ok=True)
    remove_dotenv(paths)
    return "stack down"


def remove_project_volumes(project: str) -> list[str]:
    """Remove the named volumes Compose made for ``project`` (found by its project label)."""
    import docker
    import docker.errors

    client = docker.from_env(timeout=30)
    names = []
    for volume in client.volumes.list(filters={"label": f"com.docker.compose.project={project}"}):
        try:
            volume.remove()
        except docker.errors.APIError as exc:
            raise StackError(f"volume {volume.name} could not be removed: {exc.explanation or exc}") from None
        names.append(volume.name)
    return sorted(names)


def logs(paths: Paths, services: Sequence[str], *, follow: bool = False, tail: int | None = None) -> int:
    check_docker()
    state = load_state(paths)
    args = ["logs"] + (["--follow"] if follow else []) + ([f"--tail={tail}"] if tail else []) + list(services)
    return run_compose(paths, state, args, check=False).returncode


def build(
    paths: Paths, services: Sequence[str], build_args: Mapping[str, str], toolchain_file: Path | None = None
) -> toolchain.Toolchain | None:
    """`docker compose build SERVICES`. The sandbox gets the extra packages of policies/toolchain.yaml (or
    ``toolchain_file``) as build arguments, which explicit ``build_args`` override; returns them (None
    when the sandbox is not among the services)."""
    check_docker()
    extras = None
    if toolchain.SERVICE in services:
        if toolchain_file is not None and not toolchain_file.is_file():
            raise StackError(f"toolchain policy {toolchain_file} not found")
        try:
            if toolchain_file is not None:
                extras = toolchain.load_toolchain(toolchain_file.parent, toolchain_file.name)
            else:
                extras = toolchain.load_toolchain(paths.repo / "policies")
        except ValueError as e:
            raise StackError(str(e)) from None
        build_args = toolchain.build_args(extras) | dict(build_args)
    state = State(
        mode="build",
        project=DEFAULT_PROJECT,
        files=[str(paths.compose_file)],
        profiles=["agent", "local", "test", "registries", "pool", "split"],
        services=[],
        env={"CCSANDBOX_STATE_DIR": str(paths.state_dir)},
    )
    args = ["build"]
    for k, v in build_args.items():
        args += ["--build-arg", f"{k}={v}"]
    run_compose(paths, state, [*args, *services])
    return extras
