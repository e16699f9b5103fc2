"""`ccstack`: bring the Claude Code sandbox stack up in a mode, run the agent, check, tear down.

    ccstack up MODE [--model M] [--key-file F] [--publish PORT] ...   local | mlx | openrouter | anthropic
                    [--runtime runc|runsc]                          the agent under gVisor: runsc
    ccstack up local [--no-prewarm]                                   then Claude Code's prefix saved once
    ccstack prewarm [--timeout S]                                     (local) the prefix restored or saved now
    ccstack claude [DIR] [-- CLAUDE_ARGS...]                          the agent with DIR at /workspace
    ccstack status | logs [SERVICE...] [-f] | down [--volumes]
    ccstack render MODE                                               print the generated overlay
    ccstack build [SERVICE...] [--build-arg K=V] [--toolchain FILE]   build the images (the sandbox
                                                                      with policies/toolchain.yaml's extras)
    ccstack verify [...]                                              isolation self-check (ccstack.verify)
    ccstack trace list|analyze TRACE|compare DIR; replay TRACE... --to MODE|URL   (ccstack.traces.cli)
    ccstack doctor [MODE] [--json] [--no-probe]                       is everything in place; a real tool call

State lives in .stack/ (CCSANDBOX_STATE_DIR): the generated overlay, the per-session proxy token, the
upstream key (secret files), state.json. Exit status 1 with a one-line reason on errors users can fix.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ccstack import agent_session, commands, prewarm, spend_options, status
from ccstack.arg_types import on_off, port, repeat_limit, tool_list
from ccstack.doctor import Check
from ccstack.errors import StackError
from ccstack.local_model import DEFAULT_MODEL
from ccstack.modes import MODES
from ccstack.render import to_yaml
from ccstack.state import DEFAULT_PROJECT, default_paths
from ccstack.toolchain import describe as describe_toolchain
from ccstack.traces import cli as traces_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ccstack", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--project", default=os.environ.get("CCSANDBOX_PROJECT", DEFAULT_PROJECT))
    sub = parser.add_subparsers(dest="cmd", required=True)

    modes_help = "; ".join(f"{m.name}: {m.summary}" for m in MODES.values() if m.listed)
    for name in ("up", "render"):
        p = sub.add_parser(name, help=f"{'start' if name == 'up' else 'print the overlay of'} a mode")
        p.add_argument("mode", choices=list(MODES), help=modes_help)
        p.add_argument(
            "--model",
            help="local: a .gguf path, hf:OWNER/REPO[:QUANT] or a model name (default "
            f"{DEFAULT_MODEL}); other modes: the upstream model name",
        )
        p.add_argument("--side-model", help="upstream model for side requests (titles, haiku)")
        p.add_argument(
            "--chat-template",
            help="local: a chat template of backends/llama-server/templates (name without .jinja); "
            "'' = the model's own (default: qwen2.5-coder-tools for the shipped Qwen models)",
        )
        p.add_argument(
            "--upstream",
            help="the upstream base URL incl. /v1, as the proxy container sees it (a server on this host: "
            "http://host.docker.internal:PORT/v1); required by openai, overrides the others'",
        )
        p.add_argument(
            "--upstream-kind",
            choices=("openai", "anthropic"),
            help="openai, lmstudio, ollama: anthropic for a server that speaks /v1/messages itself "
            "(pass-through); default openai (translated)",
        )
        p.add_argument(
            "--key-file",
            help="file with the upstream API key or token (else the mode's env var; optional for a "
            "server you name)",
        )
        p.add_argument("--context-window", type=int, help="the backend's context window in tokens")
        p.add_argument("--max-output-tokens", type=int, help="clamp for max_tokens")
        p.add_argument(
            "--prompt-profile",
            choices=("full", "lean"),
            help="openai-kind modes: the proxy's prompt profile (CCPROXY_PROMPT_PROFILE); lean = reduced "
            "system text and tool descriptions for small local models (default: local and pool lean, "
            "others the proxy's full)",
        )
        p.add_argument(
            "--agent-tools",
            type=tool_list,
            metavar="LIST|default",
            help="the built-in tools Claude Code offers in the sandbox, e.g. Bash,Edit,Read,Write "
            "(default: the mode's — local: Bash,Edit,Read,Write; others: the CLI's whole set = 'default')",
        )
        p.add_argument(
            "--background-tasks",
            choices=("on", "off"),
            help="Claude Code's background tasks (Bash run_in_background and the notifications that resume "
            "the agent); default: the mode's — local, pool and split: off, others: on",
        )
        p.add_argument(
            "--auto-memory",
            choices=("on", "off"),
            help="Claude Code's auto memory (one memory directory for every workdir: all are /workspace in "
            "the sandbox); default: the mode's — local, pool and split: off, others: on",
        )
        p.add_argument(
            "--repeat-limit",
            type=repeat_limit,
            metavar="N|off",
            help="the proxy's repeat guard (CCPROXY_REPEAT_LIMIT): once the model has made the same tool "
            "call with the same result N times in a row, the proxy ends the turn with a notice instead of "
            "asking it again; default: the mode's — local, pool and split: 3, others: off",
        )
        p.add_argument(
            "--silent-turn-reminder",
            choices=("on", "off"),
            help="Claude Code's reminder to the model after 5 silent tool turns (\"The user hasn't heard "
            "from you in a while…\"); default: the mode's — local, pool and split: off, others: on",
        )
        spend_options.add_arguments(p)
        p.add_argument(
            "--trace",
            action="store_true",
            help="the proxy writes a redacted trace per request to "
            "<state>/traces, read by `ccstack trace` and `ccstack replay`",
        )
        p.add_argument(
            "--slots",
            type=int,
            metavar="N",
            help="llama-server's slots per server: N-1 conversations kept in cache + 1 for side requests "
            "(default 2)",
        )
        p.add_argument(
            "--replicas",
            type=int,
            metavar="N",
            help="pool: llama-server replicas in the stack, each with --model (default: "
            "policies/backends.yaml's, 2); 0 = only --backend servers",
        )
        p.add_argument(
            "--backend",
            action="append",
            default=[],
            metavar="URL",
            help="pool: a llama-server elsewhere, as HAProxy reaches it (http://HOST:PORT; repeatable; "
            "replaces policies/backends.yaml's servers)",
        )
        p.add_argument(
            "--balance",
            choices=("session", "roundrobin"),
            help="pool: session (default: consistent hashing on the session, which keeps its cache) or "
            "roundrobin (no affinity; for comparisons)",
        )
        p.add_argument(
            "--rpc-workers",
            type=int,
            metavar="N",
            help="split: llama.cpp rpc-server containers holding the model's layers (default 2)",
        )
        p.add_argument(
            "--rpc",
            action="append",
            default=[],
            metavar="HOST:PORT",
            help="split: an rpc-server elsewhere (repeatable; a trusted network only: no authentication)",
        )
        p.add_argument("--publish", type=port, metavar="PORT", help="publish the proxy on 127.0.0.1:PORT")
        p.add_argument("-f", "--file", action="append", default=[], help="extra Compose file (repeatable)")
        p.add_argument(
            "--runtime",
            help="the agent's OCI runtime: runc (Docker's default) or runsc (gVisor, a user-space kernel; "
            "scripts/install-gvisor.sh registers it). Default: `runtime` of policies/sandbox.yaml",
        )
        if name == "up":
            p.add_argument("--wait-timeout", type=int, default=600, help="seconds to wait for health")
            p.add_argument(
                "--prewarm",
                action=argparse.BooleanOptionalAction,
                default=None,
                help="then send Claude Code's first request once so that llama-server processes and saves "
                "its prefix now, not in your first session (minutes the first time ever, seconds after); "
                "default: on for modes with a local llama-server (local), --no-prewarm to skip",
            )

    p = sub.add_parser("claude", help="run Claude Code in the sandbox with DIR (default .) mounted")
    p.add_argument("dir", nargs="?", default=".")
    p.add_argument("claude_args", nargs=argparse.REMAINDER, help="after --: arguments for claude")

    p = sub.add_parser(
        "prewarm", help="(local) Claude Code's prefix restored from its slot file or processed and saved"
    )
    p.add_argument("--timeout", type=int, default=1800, help="seconds to wait for the proxy (default 1800)")
    sub.add_parser("status", help="services, health and the proxy's URLs")
    p = sub.add_parser("logs", help="service logs")
    p.add_argument("services", nargs="*")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--tail", type=int)
    p = sub.add_parser("down", help="stop and remove the stack")
    p.add_argument(
        "--volumes", action="store_true", help="also delete the agent's state and llama-server's slot files"
    )
    p = sub.add_parser("build", help="build the images (docker compose build)")
    p.add_argument("services", nargs="*", help="default: proxy claude-sandbox")
    p.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--toolchain",
        metavar="FILE",
        help="extra packages baked into the sandbox image (default: policies/toolchain.yaml)",
    )
    p = sub.add_parser(
        "doctor", help="check Docker, images, ports, the model, the backend and a real tool call (+ fixes)"
    )
    p.add_argument("mode", nargs="?", choices=list(MODES), help="default: the running stack's, else local")
    p.add_argument("--publish", type=port, metavar="PORT", help="the port `up --publish` would use")
    p.add_argument("--model", help="local: the model `up --model` would use (default: the running stack's)")
    p.add_argument("--json", action="store_true", help="the checks as JSON")
    p.add_argument("--no-probe", action="store_true", help="skip the tool-call probe (asks the model)")
    p.add_argument("--probe-timeout", type=float, default=600, help="seconds for the probe (default 600)")
    p = sub.add_parser("verify", help="isolation self-check against the running stack", add_help=False)
    p.add_argument("verify_args", nargs=argparse.REMAINDER)
    traces_cli.add_parsers(sub)
    return parser


def _up_request(args: argparse.Namespace) -> commands.UpRequest:
    return commands.UpRequest(
        mode=args.mode,
        model=args.model,
        side_model=args.side_model,
        chat_template=args.chat_template,
        upstream=args.upstream,
        upstream_kind=args.upstream_kind,
        key_file=args.key_file,
        context_window=args.context_window,
        max_output_tokens=args.max_output_tokens,
        prompt_profile=args.prompt_profile,
        trace=args.trace,
        budget=spend_options.budget(args),
        agent_tools=args.agent_tools,
        background_tasks=on_off(args.background_tasks),
        silent_turn_reminder=on_off(args.silent_turn_reminder),
        repeat_limit=args.repeat_limit,
        auto_memory=on_off(args.auto_memory),
        publish_port=args.publish,
        project=args.project,
        extra_files=tuple(os.path.abspath(f) for f in args.file),
        wait_timeout=getattr(args, "wait_timeout", 600),
        fetch=args.cmd == "up",
        runtime=args.runtime,
        slots=args.slots,
        replicas=args.replicas,
        backends=tuple(args.backend),
        balance=args.balance,
        rpc_workers=args.rpc_workers,
        rpc=tuple(args.rpc),
    )


def show_status(st: status.Status) -> int:
    print(status.format_status(st))
    return 0 if st.healthy else 1


def doctor_table(rows: Sequence[Check], mode: str) -> Table:
    """The doctor's rows as a rich table: the mark, the check, what was found, the fix."""
    table = Table(title=f"ccstack doctor: mode {mode}", title_justify="left", show_lines=False)
    table.add_column("", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("found")
    table.add_column("fix")
    colour = {"ok": "green", "fail": "bold red", "skip": "dim"}
    for c in rows:
        table.add_row(f"[{colour[c.status]}]{c.mark}[/]", c.name, escape(c.detail), escape(c.fix or ""))
    return table


def run_doctor(args: argparse.Namespace) -> int:
    from ccstack import doctor, doctor_gather

    request = doctor_gather.DoctorRequest(
        mode=args.mode,
        publish_port=args.publish,
        model=args.model,
        probe=not args.no_probe,
        probe_timeout=args.probe_timeout,
    )
    facts = doctor_gather.gather(default_paths(), request)
    rows = doctor.judge(facts)
    if args.json:
        print(doctor.as_json(rows, facts.mode.name))
    else:
        Console(width=max(100, shutil.get_terminal_size((140, 40)).columns)).print(
            doctor_table(rows, facts.mode.name)
        )
    return 0 if doctor.healthy(rows) else 1


def run(args: argparse.Namespace) -> int:
    if hasattr(args, "traces_run"):
        return traces_cli.guarded(args)
    paths = default_paths()
    match args.cmd:
        case "up":
            started = commands.up(paths, _up_request(args))
            for warning in started.warnings:
                print(f"ccstack: warning: {warning}", file=sys.stderr)
            for notice in started.notices:
                print(notice)
            print(f"stack up: mode {started.state.mode}")
            healthy = show_status(status.status(paths))
            wanted = MODES[started.state.mode].prewarm if args.prewarm is None else args.prewarm
            if wanted and healthy == 0:
                prewarm.prewarm(paths)
            return healthy
        case "prewarm":
            prewarm.prewarm(paths, timeout=args.timeout)
            return 0
        case "render":
            mode, rendered, _state = commands.prepare(paths, _up_request(args), os.environ)
            sys.stdout.write(to_yaml(rendered, mode))
            return 0
        case "claude":
            extra = list(args.claude_args)
            if extra and extra[0] == "--":
                extra = extra[1:]
            return agent_session.claude(paths, args.dir, extra)
        case "status":
            return show_status(status.status(paths))
        case "logs":
            return commands.logs(paths, args.services, follow=args.follow, tail=args.tail)
        case "down":
            print(commands.down(paths, volumes=args.volumes, project=args.project))
            return 0
        case "build":
            build_args = dict(kv.split("=", 1) for kv in args.build_arg)
            toolchain_file = Path(args.toolchain).resolve() if args.toolchain else None
            services = args.services or ["proxy", "claude-sandbox"]
            extras = commands.build(paths, services, build_args, toolchain_file)
            if extras is not None and not extras.empty:
                print(f"extra packages for claude-sandbox: {describe_toolchain(extras)}", file=sys.stderr)
            return 0
        case "doctor":
            return run_doctor(args)
        case "verify":
            verify = importlib.import_module("ccstack.verify")
            code: int = verify.main(list(args.verify_args))
            return code
    raise AssertionError(args.cmd)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if args.cmd == "verify":  # everything after `verify` is verify's, options included
        args.verify_args = [*unknown, *args.verify_args]
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return run(args)
    except StackError as e:
        print(f"ccstack: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ccstack status | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
