"""ccproxy.tool_grammar: JSON schema -> GBNF for tool calls, and the prose/call split.

The grammar's acceptance is checked against a real llama-server in tests/backend/test_tool_grammar.py;
here: its structure over Claude Code's recorded tools, and the prose rule's language, by turning the
(regular) prose-line expression into a Python regex."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from ccproxy.tool_grammar import for_tools, lines_not_starting_with, literal
from hypothesis import given
from hypothesis import strategies as st

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"
RECORDED = [
    FIXTURES / "01-turn1.json",
    FIXTURES / "interactive" / "03-turn1.json",
    FIXTURES / "sessions" / "day1" / "01-turn1.json",
]
RULE = re.compile(r"^([a-z0-9-]+) ::= (.*)$")
TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]|[a-z][a-z0-9-]*|\{\d+(?:,\d*)?\}|[()|*+?]')


def openai_tools(path: Path) -> list[dict[str, Any]]:
    body = json.loads(path.read_text())
    body = body.get("body", body)
    return [
        {"type": "function", "function": {"name": t["name"], "parameters": t["input_schema"]}}
        for t in body["tools"]
    ]


def rules(grammar: str) -> dict[str, str]:
    out = {}
    for line in grammar.splitlines():
        m = RULE.match(line)
        assert m, f"not a rule line: {line!r}"
        assert m.group(1) not in out, f"rule defined twice: {m.group(1)}"
        out[m.group(1)] = m.group(2)
    return out


def referenced(body: str) -> set[str]:
    names = set()
    for token in TOKEN.findall(body):
        if token[0].isalpha():
            names.add(token)
    return names


def gbnf_to_regex(expr: str) -> str:
    """The regular subset used by the prose rule (literals, classes, groups, ?, *, |) as a Python regex."""
    out = []
    for token in TOKEN.findall(expr):
        if token.startswith('"'):
            out.append(re.escape(json.loads(token)))
        elif token.startswith("["):
            out.append(token)
        else:
            assert token in "()|*+?", token
            out.append(token)
    return "".join(out)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abc", '"abc"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("a\\b", '"a\\\\b"'),
        ("line\nnext\ttab\r", '"line\\nnext\\ttab\\r"'),
        ("\x01", '"\\x01"'),
        ("é ✓", '"é ✓"'),
    ],
)
def test_literal_escapes_what_gbnf_needs(text: str, expected: str) -> None:
    assert literal(text) == expected
    assert json.loads(expected.replace("\\x01", "\\u0001")) == text


PREFIXES = ('{"name"', '{ "name"', "```json")


@given(st.text(alphabet='{} "name`jso\tx-[]\\^', max_size=12))
def test_prose_lines_are_exactly_those_not_starting_like_a_call(line: str) -> None:
    pattern = re.compile(gbnf_to_regex(lines_not_starting_with(PREFIXES)))
    allowed = pattern.fullmatch(line) is not None
    assert allowed == (not line.startswith(PREFIXES))


@pytest.mark.parametrize(
    ("line", "allowed"),
    [
        ("", True),
        ("I'll fix it.", True),
        ("{", True),
        ('{"path": 1}', True),
        ('{"nam', True),
        ('{"name": "Edit"}', False),
        ('{ "name": "Edit"}', False),
        ("```python", True),
        ("```json", False),
        ("```js", True),
    ],
)
def test_prose_line_examples(line: str, allowed: bool) -> None:
    pattern = re.compile(gbnf_to_regex(lines_not_starting_with(PREFIXES)))
    assert (pattern.fullmatch(line) is not None) == allowed


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_every_recorded_tool_gets_a_call_rule_and_every_rule_is_defined(path: Path) -> None:
    tools = openai_tools(path)
    grammar = rules(for_tools(tools))
    assert grammar["root"] == "call-block | prose"
    for name, body in grammar.items():
        missing = referenced(body) - grammar.keys()
        assert not missing, f"{name} refers to undefined rules {missing}"
    calls = grammar["call"].split(" | ")
    assert len(calls) == len(tools)
    for tool, rule in zip(tools, calls, strict=True):
        name = literal(json.dumps(tool["function"]["name"]))
        assert grammar[rule].startswith(f'"{{" ws "\\"name\\"" ws ":" ws {name} ws "," ws "\\"arguments\\""')


def test_edit_arguments_follow_its_schema() -> None:
    tools = openai_tools(RECORDED[2])
    grammar = rules(for_tools(tools))
    edit = grammar["edit-args"]
    # required properties in schema order, without the optional "?", then the optional one
    keys = re.findall(r'"\\"(\w+)\\""', edit)
    assert keys == ["file_path", "old_string", "new_string", "replace_all"]
    assert '"," ws "\\"new_string\\"" ws ":" ws string ("," ws "\\"replace_all\\""' in edit
    assert "content" not in edit  # Write's argument is not Edit's


def test_schema_features() -> None:
    schema = {
        "type": "object",
        "properties": {
            "mode": {"enum": ["a", "b"]},
            "fixed": {"const": 3},
            "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "many": {"type": ["boolean", "null"]},
            "items": {"type": "array", "items": {"$ref": "#/$defs/item"}, "minItems": 1},
            "map": {"type": "object", "additionalProperties": {"type": "number"}},
            "nothing": {"type": "object", "properties": {}, "additionalProperties": False},
            "both": {"allOf": [{"properties": {"x": {"type": "string"}}, "required": ["x"]}]},
        },
        "required": ["mode"],
        "$defs": {"item": {"type": "object", "properties": {"next": {"$ref": "#/$defs/item"}}}},
    }
    grammar = rules(for_tools([{"type": "function", "function": {"name": "T", "parameters": schema}}]))
    assert grammar["t-args-mode"] == '"\\"a\\"" | "\\"b\\""'
    assert grammar["t-args-fixed"] == '"3"'
    assert grammar["t-args-either"] == "string | integer"
    assert grammar["t-args-many"] == "boolean | null"
    items = grammar["t-args-items"]
    assert items.startswith('"[" ws ref-item')
    assert ")*" in items
    ref = grammar["ref-item"]
    assert "ref-item" in grammar[ref]  # recursion through the $ref rule
    assert grammar["t-args-map-member"] == 'string ws ":" ws number'
    assert "t-args-map-member" in grammar["t-args-map"]
    assert '"\\"nothing\\"" ws ":" ws empty-object' in grammar["t-args"]
    assert grammar["empty-object"] == '"{" ws "}" ws'
    assert '\\"x\\"' in grammar["t-args-both"]


def test_no_required_properties_any_subset_in_order() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}
    grammar = rules(for_tools([{"type": "function", "function": {"name": "O", "parameters": schema}}]))
    body = grammar["o-args"]
    # the first present property starts without a comma: a, a+b, b, or nothing
    assert '("\\"a\\"" ws ":" ws string ("," ws "\\"b\\"" ws ":" ws string)? | "\\"b\\""' in body
    assert body.endswith(')? ws "}" ws')


def test_deterministic_and_shared_rules() -> None:
    tools = openai_tools(RECORDED[0])
    assert for_tools(tools) == for_tools(json.loads(json.dumps(tools)))
    grammar = rules(for_tools(tools))
    bodies = list(grammar.values())
    assert len(bodies) == len(set(bodies)) or all(b in ("string", "value") for b in bodies)


def test_no_tools_still_a_grammar_for_prose() -> None:
    grammar = rules(for_tools([]))
    assert grammar["call"] == '"{}"'
    assert "prose-line" in grammar


def inline(name: str, grammar: dict[str, str], depth: int = 0) -> str:
    """The regex of a non-recursive rule, its rule references inlined."""
    assert depth < 10, f"{name} is recursive"
    out = []
    for token in TOKEN.findall(grammar[name]):
        if token[0].isalpha():
            out.append("(?:" + inline(token, grammar, depth + 1) + ")")
        else:
            out.append(gbnf_to_regex(token) if token[0] in '"[' else token.replace("(", "(?:"))
    return "".join(out)


PROSE = rules(for_tools([{"type": "function", "function": {"name": "Read", "parameters": {}}}]))
PROSE_TEXT = re.compile(
    "(?:" + inline("prose-item", PROSE) + ")(?:\n(?:" + inline("prose-item", PROSE) + "))*", re.DOTALL
)


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        ("I'll read it first.", True),
        ('A dict:\n```python\n{"name": "John", "age": 30}\n```\nThat is all.', True),
        ('```py\n{"name": "unclosed block"}', True),
        ('Calling it:\n{"name": "Read", "arguments": {}}', False),  # a call: only the call rule
        ('```json\n{"name": "Read", "arguments": {}}\n```', False),  # a fenced call, likewise
        ('```\n{"name": "Read", "arguments": {}}\n```', False),
        ('```json\n{"path": "a"}\n```', True),  # JSON that is not a call stays prose
        ('{\n  "name": "Read"', False),  # a line of just "{" opens a pretty-printed call
        ('```python\nd = {\n  "name": "x"\n}\n```', True),
        ("{ x }", True),
    ],
)
def test_prose_lets_code_blocks_hold_anything_but_not_calls_outside_them(text: str, allowed: bool) -> None:
    assert (PROSE_TEXT.fullmatch(text) is not None) == allowed
