"""ccstack.render: mode + options + policies -> the generated overlay (pure data in, dict out)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from ccstack.egress import EgressPolicy
from ccstack.modes import MODES, SpendBudget, parse_mode
from ccstack.overlay import Override, plain
from ccstack.policy import ExtraMount, MountPolicy, Policies, parse_mounts
from ccstack.pool import PoolSpec
from ccstack.render import RenderOptions, render, to_yaml
from ccstack.split import SplitSpec

pytestmark = pytest.mark.unit

STATE = "/home/u/ccsandbox/.stack"


def policies(*, registries: bool = False, extra: tuple[ExtraMount, ...] = ()) -> Policies:
    mounts = parse_mounts(None, home="/home/u")
    return Policies(
        mounts=MountPolicy(mounts.protected, extra),
        egress=EgressPolicy(enabled=registries, domains=("pypi.org",) if registries else ()),
    )


def opts(**kw: Any) -> RenderOptions:
    base: dict[str, Any] = {"uid": 1000, "gid": 1000, "state_dir": STATE}
    if "model_file" not in kw and "hub_model" not in kw:
        base["model_file"] = "/models/q.gguf"
    return RenderOptions(**(base | kw))


def services(mode: str, **kw: Any) -> dict[str, Any]:
    rendered = render(parse_mode(mode), opts(**kw), policies())
    result: dict[str, Any] = plain(rendered.overlay)["services"]
    return result


@pytest.mark.parametrize(
    ("mode", "networks"),
    [
        ("local", ["agent", "backend"]),
        ("test", ["agent", "backend"]),
        ("mlx", ["agent", "backend", "egress"]),
        ("openrouter", ["agent", "backend", "egress"]),
        ("anthropic", ["agent", "backend", "egress"]),
    ],
)
def test_proxy_joins_egress_only_in_modes_that_need_it(mode: str, networks: list[str]) -> None:
    assert services(mode)["proxy"]["networks"] == networks


@pytest.mark.parametrize("mode", list(MODES))
def test_agent_gets_no_network_ports_or_hosts_from_any_mode(mode: str) -> None:
    agent = services(mode)["claude-sandbox"]
    assert "networks" not in agent
    assert "ports" not in agent
    assert "extra_hosts" not in agent
    assert "secrets" not in agent  # the base file gives it proxy_token only


@pytest.mark.parametrize(
    ("mode", "env"), [("openrouter", "OPENROUTER_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY")]
)
def test_key_modes_give_the_key_to_the_proxy_as_a_secret_file(mode: str, env: str) -> None:
    rendered = render(parse_mode(mode), opts(), policies())
    overlay = plain(rendered.overlay)
    assert overlay["secrets"] == {"upstream_key": {"file": f"{STATE}/secrets/upstream_key"}}
    proxy = overlay["services"]["proxy"]
    assert proxy["secrets"] == ["proxy_token", "upstream_key"]
    assert proxy["environment"]["CCPROXY_UPSTREAM_KEY_FILE"] == "/run/secrets/upstream_key"
    assert parse_mode(mode).key_env == env
    agent_env = overlay["services"]["claude-sandbox"]["environment"]
    assert not any("KEY" in k for k in agent_env)


@pytest.mark.parametrize("mode", ["local", "mlx", "test"])
def test_keyless_modes_have_no_upstream_secret(mode: str) -> None:
    overlay = plain(render(parse_mode(mode), opts(), policies()).overlay)
    assert "secrets" not in overlay
    assert "CCPROXY_UPSTREAM_KEY_FILE" not in overlay["services"]["proxy"]["environment"]


def test_mlx_reaches_the_host_through_the_proxy_only() -> None:
    svc = services("mlx")
    assert svc["proxy"]["extra_hosts"] == ["host.docker.internal:host-gateway"]
    assert svc["proxy"]["environment"]["CCPROXY_UPSTREAM"] == "http://host.docker.internal:8080/v1"
    assert svc["proxy"]["environment"]["CCPROXY_MODEL"] == "default_model"


def test_proxy_environment_replaces_the_base_one() -> None:
    rendered = render(parse_mode("anthropic"), opts(), policies())
    env = rendered.overlay["services"]["proxy"]["environment"]
    assert isinstance(env, Override)
    assert env.value["CCPROXY_UPSTREAM_KIND"] == "anthropic"
    assert "CCPROXY_MODEL" not in env.value  # names pass through to Anthropic


def test_upstream_and_model_overrides() -> None:
    svc = services("openrouter", upstream="http://fake:8080/v1", model="z/m", side_model="z/s")
    env = svc["proxy"]["environment"]
    assert (env["CCPROXY_UPSTREAM"], env["CCPROXY_MODEL"], env["CCPROXY_SIDE_MODEL"]) == (
        "http://fake:8080/v1",
        "z/m",
        "z/s",
    )
    agent = svc["claude-sandbox"]["environment"]
    assert agent["ANTHROPIC_MODEL"] == "z/m"
    assert agent["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "z/s"
    assert agent["CLAUDE_CODE_SUBAGENT_MODEL"] == "z/m"


@pytest.mark.parametrize(
    ("mode", "prompt_profile", "expected"),
    [
        ("local", None, "lean"),  # the local mode's (the task suite's best rows for the 0.5B model)
        ("local", "full", "full"),
        ("pool", None, "lean"),
        ("openrouter", None, None),  # the proxy's own default (full)
        ("openrouter", "lean", "lean"),
    ],
)
def test_prompt_profile_is_the_options_else_the_modes(
    mode: str, prompt_profile: str | None, expected: str | None
) -> None:
    env = services(mode, prompt_profile=prompt_profile)["proxy"]["environment"]
    assert env.get("CCPROXY_PROMPT_PROFILE") == expected


@pytest.mark.parametrize(
    ("mode", "repeat_limit", "expected"),
    [
        ("local", None, "3"),  # the local modes' (the task suite: no run escaped a 3-repeat loop)
        ("local", 5, "5"),
        ("local", 0, None),  # --repeat-limit off: the proxy's own default (off)
        ("split", None, "3"),
        ("openrouter", None, None),
        ("openrouter", 4, "4"),
    ],
)
def test_repeat_limit_is_the_options_else_the_modes(
    mode: str, repeat_limit: int | None, expected: str | None
) -> None:
    env = services(mode, repeat_limit=repeat_limit)["proxy"]["environment"]
    assert env.get("CCPROXY_REPEAT_LIMIT") == expected


@pytest.mark.parametrize(
    ("mode", "auto_memory", "expected"),
    [
        ("local", None, "1"),
        ("local", True, None),
        ("pool", None, "1"),
        ("openrouter", None, None),
        ("openrouter", False, "1"),
    ],
)
def test_auto_memory_is_the_options_else_the_modes(
    mode: str, auto_memory: bool | None, expected: str | None
) -> None:
    env = services(mode, auto_memory=auto_memory)["claude-sandbox"]["environment"]
    assert env.get("CLAUDE_CODE_DISABLE_AUTO_MEMORY") == expected


def test_traces_are_written_as_the_user_into_the_state_directory() -> None:
    proxy = services("local")["proxy"]
    assert "CCPROXY_TRACE_DIR" not in proxy["environment"]
    assert "user" not in proxy
    proxy = services("local", trace_dir="/state/traces")["proxy"]
    assert proxy["environment"]["CCPROXY_TRACE_DIR"] == "/traces"
    assert proxy["volumes"] == [{"type": "bind", "source": "/state/traces", "target": "/traces"}]
    assert proxy["user"] == f"{opts().uid}:{opts().gid}"


@pytest.mark.parametrize(
    ("mode", "agent_tools", "expected"),
    [
        ("local", None, "Bash,Edit,Read,Write"),  # the local mode's small toolset
        ("local", "default", None),  # the CLI's whole set: nothing passed
        ("local", "Bash,Read", "Bash,Read"),
        ("openrouter", None, None),
        ("openrouter", "Bash,Edit", "Bash,Edit"),
    ],
)
def test_agent_tools(mode: str, agent_tools: str | None, expected: str | None) -> None:
    env = services(mode, agent_tools=agent_tools)["claude-sandbox"]["environment"]
    assert env.get("CCSANDBOX_TOOLS") == expected


# The agent's switches for small models: (the option, Claude Code's variable, its value when off).
AGENT_SWITCHES = {
    "background_tasks": ("CLAUDE_CODE_DISABLE_BACKGROUND_TASKS", "1"),  # run_in_background loops
    "silent_turn_reminder": ("CLAUDE_CODE_SILENT_TURN_REMINDER", "0"),  # echoed through Bash
}


@pytest.mark.parametrize("option", AGENT_SWITCHES)
@pytest.mark.parametrize(
    ("mode", "value", "off"),
    [
        ("local", None, True),  # off by default for a small local model
        ("local", True, False),
        ("pool", None, True),
        ("split", None, True),
        ("openrouter", None, False),
        ("anthropic", False, True),
    ],
)
def test_the_agents_switches_for_small_models(mode: str, value: bool | None, off: bool, option: str) -> None:
    variable, when_off = AGENT_SWITCHES[option]
    env = services(mode, **{option: value})["claude-sandbox"]["environment"]
    assert env.get(variable) == (when_off if off else None)


def test_agent_environment_is_preconfigured_for_the_proxy() -> None:
    env = services("local", context_window=16384)["claude-sandbox"]["environment"]
    assert env["ANTHROPIC_BASE_URL"] == "http://proxy:8787"
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert env["DISABLE_AUTOUPDATER"] == "1"
    assert env["CLAUDE_CODE_ATTRIBUTION_HEADER"] == "0"
    assert env["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "16384"
    assert "CLAUDE_CODE_AUTO_COMPACT_WINDOW" not in env  # 100k floor in Claude Code: it would warn
    big = services("openrouter", context_window=262144)["claude-sandbox"]["environment"]
    assert big["CLAUDE_CODE_AUTO_COMPACT_WINDOW"] == big["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "262144"
    assert "ANTHROPIC_AUTH_TOKEN" not in env  # it comes from the secret file, not the compose file


def test_local_mode_leaves_the_window_to_the_backend_unless_given() -> None:
    # llama-server reports n_ctx per slot through the proxy's /health; the sandbox entrypoint reads it.
    assert "CLAUDE_CODE_MAX_CONTEXT_TOKENS" not in services("local")["claude-sandbox"]["environment"]
    assert services("local")["llama-server"]["environment"]["LLAMA_CTX_PER_SLOT"] == "32768"
    mlx = services("mlx")["claude-sandbox"]["environment"]
    assert mlx["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "32768"  # mlx_lm.server cannot report it


@pytest.mark.parametrize(
    ("mode", "tool_search_off"), [("local", True), ("openrouter", True), ("anthropic", False)]
)
def test_tool_search_is_off_for_translated_backends(mode: str, tool_search_off: bool) -> None:
    env = services(mode)["claude-sandbox"]["environment"]
    assert (env.get("ENABLE_TOOL_SEARCH") == "false") is tool_search_off


@pytest.mark.parametrize("mode", ["local", "mlx", "test"])
def test_local_backends_get_time_for_a_whole_windows_prefill(mode: str) -> None:
    """Claude Code re-sends a request after API_TIMEOUT_MS (600 s by default): for a backend on this
    machine it covers a whole window's prefill at 10 tokens/s and the longest answer at 2 tokens/s."""
    svc = services(mode)
    assert svc["claude-sandbox"]["environment"]["API_TIMEOUT_MS"] == str((3277 + 2048) * 1000)
    assert svc["proxy"]["environment"]["CCPROXY_READ_TIMEOUT"] == "5325"
    big = services(mode, context_window=65536, max_output_tokens=8192)
    assert big["claude-sandbox"]["environment"]["API_TIMEOUT_MS"] == str((6554 + 4096) * 1000)
    small = services(mode, context_window=4096, max_output_tokens=256)  # within Claude Code's 600 s
    assert "API_TIMEOUT_MS" not in small["claude-sandbox"]["environment"]
    assert "CCPROXY_READ_TIMEOUT" not in small["proxy"]["environment"]


@pytest.mark.parametrize("mode", ["openrouter", "anthropic"])
def test_remote_backends_keep_the_default_timeouts(mode: str) -> None:
    svc = services(mode)
    assert "API_TIMEOUT_MS" not in svc["claude-sandbox"]["environment"]
    proxy_env = svc["proxy"]["environment"]
    assert "CCPROXY_READ_TIMEOUT" not in (proxy_env.value if isinstance(proxy_env, Override) else proxy_env)


def test_anthropic_mode_keeps_claude_model_names() -> None:
    env = services("anthropic")["claude-sandbox"]["environment"]
    assert not any(k.startswith("ANTHROPIC_DEFAULT_") or k == "ANTHROPIC_MODEL" for k in env)
    assert "CLAUDE_CODE_MAX_CONTEXT_TOKENS" not in env


def test_local_mounts_the_model_file_read_only_and_sizes_the_context() -> None:
    llama = services("local", model_file="/data/m.gguf", context_window=8192, chat_template="tpl")[
        "llama-server"
    ]
    assert llama["volumes"] == [
        {"type": "bind", "source": "/data/m.gguf", "target": "/models/model.gguf", "read_only": True},
        {"type": "volume", "source": "llama-slots", "target": "/slots"},  # slot files survive `down`
    ]
    assert llama["environment"] == {
        "LLAMA_MODEL": "/models/model.gguf",
        "LLAMA_PARALLEL": "2",
        "LLAMA_CTX_PER_SLOT": "8192",
        "LLAMA_CHAT_TEMPLATE": "tpl",
        "LLAMA_SLOT_SAVE_PATH": "/slots",
    }
    assert "user" not in llama  # compose.yaml's: the invoking user


def test_local_with_a_hub_model_fetches_into_a_named_volume() -> None:
    rendered = render(parse_mode("local"), opts(hub_model="org/repo-GGUF:Q4_K_M"), policies())
    overlay = plain(rendered.overlay)
    llama = overlay["services"]["llama-server"]
    assert llama["environment"]["LLAMA_HF_REPO"] == "org/repo-GGUF:Q4_K_M"
    assert "LLAMA_MODEL" not in llama["environment"]
    assert llama["volumes"] == [
        {"type": "volume", "source": "llama-models", "target": "/models"},
        {"type": "volume", "source": "llama-slots", "target": "/slots"},
    ]
    assert "egress" in llama["networks"]
    assert overlay["volumes"] == {"llama-models": {}}
    assert "user: !reset" in to_yaml(rendered, parse_mode("local"))


def test_local_without_a_model_is_an_error() -> None:
    with pytest.raises(ValueError, match="model"):
        render(parse_mode("local"), RenderOptions(uid=1000, gid=1000, state_dir=STATE), policies())


def test_root_agent_is_refused() -> None:
    with pytest.raises(ValueError, match="root"):
        render(parse_mode("test"), opts(uid=0), policies())


def test_protected_paths_are_read_only_bind_mounts_over_the_workdir() -> None:
    svc = services("test")
    vols = {v["target"]: v for v in svc["claude-sandbox"]["volumes"]}
    for path in (".git/hooks", ".git/config", ".git/modules", ".git/worktrees", ".claude", ".mcp.json"):
        v = vols[f"/workspace/{path}"]
        assert v["read_only"] is True
        assert v["source"] == "${CCSANDBOX_WORKDIR:-${PWD}}/" + path
    assert svc["workdir-init"]["command"] == [
        "/workspace",
        ".git/hooks/",
        ".git/config",
        ".git/modules/",
        ".git/worktrees/",
        ".claude/",
        ".mcp.json",
        ".devcontainer/",
    ]


def test_extra_readonly_mounts_from_policy() -> None:
    extra = (ExtraMount("/srv/data", "/data"),)
    rendered = render(parse_mode("test"), opts(), policies(extra=extra))
    vols = plain(rendered.overlay)["services"]["claude-sandbox"]["volumes"]
    assert {"type": "bind", "source": "/srv/data", "target": "/data", "read_only": True} in vols


def test_registries_policy_adds_the_egress_proxy() -> None:
    rendered = render(parse_mode("local"), opts(), policies(registries=True))
    assert "registries" in rendered.profiles
    assert "egress-proxy" in rendered.services
    env = plain(rendered.overlay)["services"]["claude-sandbox"]["environment"]
    assert env["HTTPS_PROXY"] == "http://egress-proxy:3128"
    assert "proxy" in env["NO_PROXY"].split(",")
    assert env["CCSANDBOX_REGISTRIES"] == "on"
    assert "PIP_RETRIES" not in env  # pip and npm keep their retries for the real registries


def test_without_registries_pip_and_npm_fail_fast() -> None:
    rendered = render(parse_mode("local"), opts(), policies())
    env = plain(rendered.overlay)["services"]["claude-sandbox"]["environment"]
    assert "HTTPS_PROXY" not in env
    assert "https_proxy" not in env
    assert env["CCSANDBOX_REGISTRIES"] == "off"
    assert env["PIP_RETRIES"] == "1"
    assert env["NPM_CONFIG_FETCH_RETRIES"] == "0"


def test_publish_without_egress_uses_a_network_without_nat() -> None:
    rendered = render(parse_mode("local"), opts(publish_port=18000), policies())
    overlay = plain(rendered.overlay)
    assert overlay["services"]["proxy"]["ports"] == ["127.0.0.1:18000:8787"]
    assert "published" in overlay["services"]["proxy"]["networks"]
    assert overlay["networks"]["published"]["driver_opts"] == {
        "com.docker.network.bridge.enable_ip_masquerade": "false"
    }


def test_profiles_services_and_env() -> None:
    rendered = render(parse_mode("local"), opts(uid=1234, gid=2345), policies())
    assert rendered.profiles == ("local",)
    assert rendered.services == ("proxy", "llama-server")
    assert rendered.env == {"CCSANDBOX_UID": "1234", "CCSANDBOX_GID": "2345", "CCSANDBOX_STATE_DIR": STATE}


def test_yaml_is_marked_generated_and_uses_override_tags() -> None:
    text = to_yaml(render(parse_mode("test"), opts(), policies()), parse_mode("test"))
    assert text.startswith("# Generated by ccstack")
    assert "environment: !override" in text

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> object:
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        assert isinstance(node, yaml.SequenceNode)
        return loader.construct_sequence(node, deep=True)

    Loader.add_constructor("!override", construct)
    data = yaml.load(text, Loader=Loader)
    assert data["services"]["proxy"]["environment"]["CCPROXY_UPSTREAM"] == "http://scripted-upstream:8080/v1"


def test_session_overlay_replaces_the_agents_mounts_with_the_sessions_guards() -> None:
    from ccstack.overlay import SESSION_HEADER, dump_yaml, session_overlay
    from ccstack.protection import Protection, WorkdirScan, compose_volumes, plan

    pol = policies(extra=(ExtraMount("/data/x", "/data/x"),))
    protection: Protection = plan(WorkdirScan({".git": "dir", "sub/.git": "file"}, git_config=""), pol.mounts)
    overlay = session_overlay(
        compose_volumes(protection, "/home/u/p"), pol, workdir="/home/u/p", managed_settings="/r/m.json"
    )
    vols = overlay["services"]["claude-sandbox"]["volumes"]
    assert isinstance(vols, Override)
    targets = [v["target"] for v in vols.value]
    assert targets[0] == "/workspace"
    assert {"/workspace/.git/config", "/workspace/sub/.git", "/workspace/sub", "/data/x"} <= set(targets)
    assert "/etc/claude-code/managed-settings.json" in targets
    assert "/home/claude/.claude" in targets
    assert "/etc/ccsandbox/placeholders.gitignore" not in targets  # only with a session's excludes file
    with_excludes = session_overlay(
        [], pol, workdir="/w", managed_settings="/m", git_excludes="/s/x.gitignore"
    )
    mount = with_excludes["services"]["claude-sandbox"]["volumes"].value[-2]
    assert mount == {
        "type": "bind",
        "source": "/s/x.gitignore",
        "target": "/etc/ccsandbox/placeholders.gitignore",
        "read_only": True,
    }
    assert plain(overlay["services"]["workdir-init"]["command"]) == ["/workspace"]
    text = dump_yaml(overlay, SESSION_HEADER)
    assert text.startswith("# Generated by ccstack")
    assert "volumes: !override" in text


def test_pool_renders_haproxy_its_config_and_the_replicas() -> None:
    spec = PoolSpec(replicas=2, servers=("http://gpu-1.lan:8080",))
    rendered = render(
        parse_mode("pool"), opts(pool=spec, slots=7, compose_file="/repo/compose.yaml"), policies()
    )
    svc = plain(rendered.overlay)["services"]
    assert svc["proxy"]["environment"]["CCPROXY_UPSTREAM"] == "http://haproxy:8080/v1"
    assert svc["proxy"]["environment"]["CCPROXY_UPSTREAM_POOL"] == "on"
    assert svc["proxy"]["networks"] == ["agent", "backend"]  # only HAProxy reaches servers elsewhere
    assert svc["llama-server"]["environment"]["LLAMA_PARALLEL"] == "7"
    assert svc["llama-server"]["environment"]["LLAMA_SLOT_SAVE_PATH"] == ""  # no prefix cache in a pool
    assert svc["llama-server-2"]["extends"] == {"file": "/repo/compose.yaml", "service": "llama-server"}
    assert svc["llama-server-2"]["environment"] == svc["llama-server"]["environment"]
    assert svc["haproxy"]["networks"] == ["backend", "egress"]
    assert rendered.profiles == ("pool", "local")
    assert rendered.services == ("proxy", "haproxy", "llama-server", "llama-server-2")
    assert "server remote-1 gpu-1.lan:8080" in rendered.files["haproxy/haproxy.cfg"]


def test_a_pool_of_servers_elsewhere_runs_no_replica() -> None:
    spec = PoolSpec(replicas=0, servers=("http://gpu-1.lan:8080",))
    rendered = render(parse_mode("pool"), opts(pool=spec, model_file=None), policies())
    assert set(plain(rendered.overlay)["services"]) == {"proxy", "claude-sandbox", "workdir-init", "haproxy"}
    assert rendered.profiles == ("pool",)
    assert rendered.services == ("proxy", "haproxy")


def test_spend_budget_reaches_the_proxy_only_when_given() -> None:
    env = services("openrouter")["proxy"]["environment"]
    assert not [name for name in env if name.startswith("CCPROXY_BUDGET_")]
    budget = SpendBudget(2_000_000, None, 0.5, 10.0, ("a=1/2", "b=3/4"))
    env = services("openrouter", budget=budget)["proxy"]["environment"]
    assert {k: v for k, v in env.items() if k.startswith("CCPROXY_BUDGET_")} == {
        "CCPROXY_BUDGET_SESSION_TOKENS": "2000000",
        "CCPROXY_BUDGET_SESSION_USD": "0.5",
        "CCPROXY_BUDGET_DAY_USD": "10",
    }
    assert env["CCPROXY_PRICES"] == "a=1/2,b=3/4"
    assert not [
        k for k in services("openrouter", budget=budget)["claude-sandbox"]["environment"] if "BUDGET" in k
    ]


def test_split_gives_llama_server_its_rpc_servers() -> None:
    spec = SplitSpec(workers=2, remote=("gpu-1.lan:50052",))
    rendered = render(parse_mode("split"), opts(split=spec, compose_file="/repo/compose.yaml"), policies())
    svc = plain(rendered.overlay)["services"]
    llama = svc["llama-server"]
    assert llama["environment"]["LLAMA_RPC"] == "rpc-server:50052,rpc-server-2:50052,gpu-1.lan:50052"
    assert (
        llama["environment"]["LLAMA_SLOT_SAVE_PATH"] == "/slots"
    )  # one llama-server: the prefix cache stays
    assert llama["networks"] == ["backend", "egress"]  # to reach the rpc-server elsewhere
    assert set(llama["depends_on"]) == {"rpc-server", "rpc-server-2"}
    assert svc["rpc-server-2"]["extends"]["service"] == "rpc-server"
    assert rendered.profiles == ("local", "split")
    assert rendered.services == ("proxy", "llama-server", "rpc-server", "rpc-server-2")
    assert svc["proxy"]["networks"] == ["agent", "backend"]
