"""A GBNF grammar that makes a small model's text tool calls valid calls of the request's tools (pure).

With text tool calls (``ccproxy.text_tool_calls``) the backend is asked for plain text and the proxy
recovers ``{"name": ..., "arguments": {...}}`` objects from it. Small models often write such an object
with a made-up tool name (``"fix_calc.py"``) or another tool's arguments (``Edit`` with ``Write``'s
``content``); the proxy then has to pass it on as text, and nothing happens. llama-server accepts a
``grammar`` with ``tool_choice: "none"`` (its chat parser builds none of its own then), so the proxy
sends this one:

    grammar = for_tools(chat_request["tools"])     # OpenAI-style tools -> GBNF text

An answer under it is either

* **calls**: one or more ``{"name": "<one of the tools>", "arguments": <that tool's input, valid
  against its JSON schema>}``, compact or pretty-printed, optionally inside a ```` ```json ```` fence,
  nothing after them; or
* **prose**: any text whose lines do not start like a call (``{"name"``, or a line of just ``{``),
  except inside a code block in another language than JSON (```` ```python ````: a dict literal is
  code, not a call); prose may end with calls on their own lines.

So a call, once begun, can only name a real tool and carry that tool's arguments — required properties
present, enums respected, types right — while prose, code blocks and JSON that is not a call stay free.
The JSON schema subset covered is what tool schemas use: ``type`` (or a list of them), ``properties``
/ ``required`` (properties in schema order, required ones first), ``additionalProperties`` (a schema:
a map; otherwise no extra keys), ``items`` / ``minItems``, ``enum``, ``const``, ``anyOf`` / ``oneOf``,
``allOf`` of objects, local ``$ref``; anything else accepts any JSON value of the right type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["GRAMMAR_VERSION", "GrammarBuilder", "for_tools", "lines_not_starting_with", "literal"]

GRAMMAR_VERSION = "calls-3"
"""Changes whenever the grammar's language changes (logged by the proxy at start-up)."""

_PRIMITIVES = {
    "ws": '| " " | "\\n" [ \\t]{0,20}',
    "string": '"\\"" char* "\\""',
    "char": '[^"\\\\\\x7F\\x00-\\x1F] | "\\\\" (["\\\\/bfnrt] | "u" [0-9a-fA-F]{4})',
    "integer": '"-"? ([0-9] | [1-9] [0-9]{0,15})',
    "number": 'integer ("." [0-9]+)? ([eE] [-+]? [0-9]+)?',
    "boolean": '"true" | "false"',
    "null": '"null"',
    "value": "object | array | string | number | boolean | null",
    "object": '"{" ws (member ("," ws member)*)? ws "}" ws',
    "member": 'string ws ":" ws value',
    "array": '"[" ws (value ("," ws value)*)? ws "]" ws',
}
_RULE_NAME = re.compile(r"[^a-zA-Z0-9]+")

# Line starts that begin a call: prose lines must not start with these, so a call is always constrained.
_CALL_STARTS = ('{"name"', '{ "name"')
_CALL_OPENERS = ("{", "{ ")
"""A line holding only a brace opens a pretty-printed call (``{`` / ``  "name": ...``) outside code."""


def literal(text: str) -> str:
    """A GBNF string literal matching ``text`` exactly."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _char_class_except(chars: Iterable[str]) -> str:
    """``[^...]`` excluding ``chars`` (and newlines, which end a line)."""
    escaped = sorted({_class_char(c) for c in chars} | {"\\n"})
    return "[^" + "".join(escaped) + "]"


def _class_char(ch: str) -> str:
    if ch in "]\\^-[":
        return "\\" + ch
    if ch == "\n":
        return "\\n"
    if ch == "\t":
        return "\\t"
    if ch == "\r":
        return "\\r"
    return ch


def lines_not_starting_with(prefixes: Sequence[str], *, empty: bool = True, whole: Sequence[str] = ()) -> str:
    """A GBNF expression for one line (no newline) that starts with none of ``prefixes`` and is none of
    the ``whole`` lines.

    The complement of a set of prefixes, walked as a trie: at each proper prefix ``p`` of a forbidden
    string, the line may end there (unless ``p`` is a forbidden whole line) or continue with a character
    that leaves the trie."""
    trie: dict[str, Any] = {}
    for text, mark in [(p, "$end") for p in prefixes] + [(w, "$whole") for w in whole]:
        node = trie
        for ch in text:
            node = node.setdefault(ch, {})
        node[mark] = True
    alternatives: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        if node.get("$end"):
            return  # a forbidden prefix is complete: nothing below it is allowed
        children = [ch for ch in node if not ch.startswith("$")]
        rest = f"({_char_class_except(children)} [^\\n]*)"
        may_end = (bool(path) or empty) and not node.get("$whole")
        alternatives.append((f"{literal(path)} " if path else "") + rest + ("?" if may_end else ""))
        for ch in children:
            walk(node[ch], path + ch)

    walk(trie, "")
    return " | ".join(f"({alt})" for alt in alternatives)


class GrammarBuilder:
    """Collects named GBNF rules; identical bodies share one rule."""

    def __init__(self) -> None:
        self.rules: dict[str, str] = {}
        self._by_body: dict[str, str] = {}
        self._refs: dict[str, str] = {}
        self._used_primitives: set[str] = set()

    def add(self, hint: str, body: str) -> str:
        """The name of a rule with ``body`` (a new one named after ``hint`` unless it exists)."""
        if body in self._by_body:
            return self._by_body[body]
        name = self._fresh(hint)
        self.rules[name] = body
        self._by_body[body] = name
        return name

    def primitive(self, name: str) -> str:
        self._used_primitives.add(name)
        return name

    def render(self, root: str) -> str:
        lines = [f"root ::= {root}"]
        lines += [f"{name} ::= {body}" for name, body in self.rules.items()]
        # every primitive, because they refer to each other; llama.cpp ignores unused rules
        if self._used_primitives:
            lines += [f"{name} ::= {body}" for name, body in _PRIMITIVES.items()]
        return "\n".join(lines) + "\n"

    def _fresh(self, hint: str) -> str:
        base = _RULE_NAME.sub("-", hint).strip("-").lower() or "r"
        if base in _PRIMITIVES or base == "root":
            base += "-r"
        name, n = base, 1
        while name in self.rules:
            n += 1
            name = f"{base}-{n}"
        return name

    # --- JSON schema -> rules ------------------------------------------------------------------

    def schema(self, schema: object, hint: str, root: Mapping[str, Any]) -> str:
        """The name of a rule for JSON values valid against ``schema`` (``root`` resolves ``$ref``)."""
        if not isinstance(schema, Mapping):
            return self.primitive("value")
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return self._ref(ref, root)
        if "const" in schema:
            return self.add(hint, literal(_dump(schema["const"])))
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return self.add(hint, " | ".join(literal(_dump(v)) for v in enum))
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                names = [self.schema(o, f"{hint}-{i}", root) for i, o in enumerate(options)]
                return self.add(hint, " | ".join(dict.fromkeys(names)))
        merged = _merge_all_of(schema)
        if merged is not schema:
            return self.schema(merged, hint, root)
        kind = schema.get("type")
        if isinstance(kind, list):
            names = [self.schema({**schema, "type": k}, f"{hint}-{k}", root) for k in kind]
            return self.add(hint, " | ".join(dict.fromkeys(names)))
        if kind == "object" or (kind is None and "properties" in schema):
            return self._object(schema, hint, root)
        if kind == "array":
            return self._array(schema, hint, root)
        if kind == "string" and _int_at_least(schema.get("minLength"), 1):
            return self.add("nonempty-string", '"\\"" char+ "\\""')
        if kind in ("string", "number", "integer", "boolean", "null"):
            return self.primitive(kind)
        return self.primitive("value")

    def _ref(self, ref: str, root: Mapping[str, Any]) -> str:
        key = f"{id(root)}:{ref}"
        if key in self._refs:
            return self._refs[key]
        target: object = root
        if ref.startswith("#"):
            for part in ref.lstrip("#").split("/"):
                if part and isinstance(target, Mapping):
                    target = target.get(part.replace("~1", "/").replace("~0", "~"))
        else:
            target = None  # remote references are not followed
        name = self._fresh("ref-" + ref.rsplit("/", 1)[-1])
        self._refs[key] = name
        self.rules[name] = "value"  # placeholder that makes recursion possible
        self.rules[name] = self.schema(target, name + "-v", root)
        return name

    def _object(self, schema: Mapping[str, Any], hint: str, root: Mapping[str, Any]) -> str:
        props = schema.get("properties")
        props = props if isinstance(props, Mapping) else {}
        required = schema.get("required")
        required = [r for r in required if r in props] if isinstance(required, list) else []
        extra = schema.get("additionalProperties")
        if not props:
            if isinstance(extra, Mapping) and extra:
                value = self.schema(extra, f"{hint}-value", root)
                member = self.add(f"{hint}-member", f'{self.primitive("string")} ws ":" ws {value}')
                return self.add(hint, f'"{{" ws ({member} ("," ws {member})*)? ws "}}" ws')
            if extra is False:
                self.primitive("ws")
                return self.add("empty-object", '"{" ws "}" ws')
            return self.primitive("object")
        pairs = {
            key: f'{literal(json.dumps(key))} ws ":" ws {self.schema(sub, f"{hint}-{key}", root)}'
            for key, sub in props.items()
        }
        must = [pairs[k] for k in required]
        may = [pairs[k] for k in props if k not in required]
        if must:
            body = ' "," ws '.join(must) + "".join(f' ("," ws {p})?' for p in may)
        elif may:
            # the first present optional property starts without a comma
            tails = [""] * (len(may) + 1)
            for i in range(len(may) - 1, -1, -1):
                tails[i] = f'("," ws {may[i]})? {tails[i + 1]}'.strip()
            starts = [f"{p} {tails[i + 1]}".strip() for i, p in enumerate(may)]
            body = "(" + " | ".join(starts) + ")?"
        else:
            body = ""
        self.primitive("ws")
        return self.add(hint, f'"{{" ws {body} ws "}}" ws'.replace("ws  ", "ws "))

    def _array(self, schema: Mapping[str, Any], hint: str, root: Mapping[str, Any]) -> str:
        item = self.schema(schema.get("items"), f"{hint}-item", root)
        self.primitive("ws")
        if _int_at_least(schema.get("minItems"), 1):
            return self.add(hint, f'"[" ws {item} ("," ws {item})* ws "]" ws')
        return self.add(hint, f'"[" ws ({item} ("," ws {item})*)? ws "]" ws')


def _dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _int_at_least(value: object, bound: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= bound


def _merge_all_of(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """``allOf`` of object schemas as one object schema (properties and required lists joined)."""
    parts = schema.get("allOf")
    if not isinstance(parts, list) or not parts:
        return schema
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    props: dict[str, Any] = dict(merged.get("properties") or {})
    required: list[str] = list(merged.get("required") or [])
    for part in parts:
        if not isinstance(part, Mapping):
            continue
        props.update(part.get("properties") or {})
        required += [r for r in part.get("required") or [] if r not in required]
        for key, value in part.items():
            if key not in ("properties", "required"):
                merged.setdefault(key, value)
    if props:
        merged["properties"] = props
        merged.setdefault("type", "object")
    if required:
        merged["required"] = required
    return merged


def for_tools(tools: Sequence[Mapping[str, Any]]) -> str:
    """The GBNF grammar (text) for answers to a request with these OpenAI-style ``tools``."""
    builder = GrammarBuilder()
    calls = []
    for tool in tools:
        function = tool.get("function", tool)
        name = function.get("name")
        if not isinstance(name, str):
            continue
        schema = function.get("parameters")
        root = schema if isinstance(schema, Mapping) else {}
        args = builder.schema(root or {"type": "object"}, f"{name}-args", root)
        # compact as the template asks, or pretty-printed over several lines as small models also write
        key = literal(json.dumps(name))
        head = f'"{{" ws "\\"name\\"" ws ":" ws {key} ws "," ws "\\"arguments\\"" ws ":" ws'
        calls.append(builder.add(f"{name}-call", f'{head} {args} ws "}}"'))
    builder.primitive("ws")
    call = builder.add("call", " | ".join(calls) if calls else '"{}"')
    bare = builder.add("calls", f'{call} ("\\n" {call})*')
    fenced = f'"```json\\n" {bare} "\\n```" | "```\\n" {bare} "\\n```"'
    block = builder.add("call-block", f'({bare} | {fenced}) "\\n"?')
    line = builder.add("prose-line", lines_not_starting_with(_CALL_STARTS, whole=_CALL_OPENERS))
    # A code block in another language than JSON holds whatever lines it likes (a dict literal too).
    lang = builder.add("fence-lang", lines_not_starting_with(("json", "JSON"), empty=False))
    code = builder.add("code-line", lines_not_starting_with(("```",)))
    fence = builder.add("code-block", f'"```" {lang} ("\\n" {code})* ("\\n" "```" [^\\n]*)?')
    item = builder.add("prose-item", f"{line} | {fence}")
    prose = builder.add("prose", f'{item} ("\\n" {item})* ("\\n" {block})?')
    return builder.render(f"{block} | {prose}")
