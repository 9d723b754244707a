"""Profile text as untrusted input: a YAML loader that refuses, quickly and by line, what a profile
never needs.

The text is composed into a node tree by a SafeLoader subclass that counts as it goes, the tree is
checked, and only then are Python values constructed. Refused, each with its line:
- anchors and aliases (`&a`, `*a`) and merge keys (`<<`): profiles do not need them, and aliases are
  how a few hundred bytes expand into billions of nodes (the "billion laughs" bomb) or a cycle;
- more than MAX_NODES nodes, nesting deeper than MAX_DEPTH, text longer than MAX_PROFILE_CHARS;
- the same key twice in one mapping (YAML keeps the last one silently);
- control characters (U+0000-U+001F, U+007F-U+009F: newline, tab, escape...) and Unicode direction
  overrides in any key or value: names, ids and paths are one line of printable text;
- numbers longer than MAX_NUMBER_CHARS characters.
Numbers with an exponent and no dot (`1e6`) are read as numbers, as YAML 1.2 reads them (PyYAML's
YAML 1.1 rules read them as strings).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import yaml
from yaml.reader import ReaderError

MAX_PROFILE_CHARS = 32 * 1024
MAX_NODES = 5000
MAX_DEPTH = 32
MAX_NUMBER_CHARS = 64

INT_TAG, FLOAT_TAG, MERGE_TAG = (f"tag:yaml.org,2002:{t}" for t in ("int", "float", "merge"))
_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
# Cc (C0, DEL, C1) and the invisible direction marks/overrides that reorder what a terminal shows.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class YamlRefused(Exception):
    """Text a profile cannot be read from: the problem (with its fix), line and key path."""

    def __init__(self, problem: str, line: int | None = None, path: tuple = ()):
        super().__init__(problem)
        self.problem, self.line, self.path = problem, line, path


def _line(node_or_event) -> int:
    return node_or_event.start_mark.line + 1


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses aliases, anchors, deep nesting and too many nodes while composing,
    and duplicate keys while constructing."""

    def __init__(self, text: str):
        super().__init__(text)
        self._nodes = 0
        self._path: list[tuple] = []  # key path of each node being composed, outermost first
        self.paths: dict[int, tuple] = {}

    def compose_node(self, parent, index):
        event = self.peek_event()
        path = self._path[-1] if self._path else ()
        if isinstance(index, yaml.ScalarNode):  # a mapping's value, under its key
            path += (index.value,)
        elif isinstance(index, int):  # a sequence item
            path += (index,)
        if isinstance(event, yaml.AliasEvent):
            raise YamlRefused(f"YAML alias *{event.anchor} is not allowed: profiles do not use "
                              "anchors and aliases; write the value out where it is needed",
                              _line(event), path)
        if getattr(event, "anchor", None) is not None:
            raise YamlRefused(f"YAML anchor &{event.anchor} is not allowed: profiles do not use "
                              "anchors and aliases; remove it", _line(event), path)
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise YamlRefused(f"more than {MAX_NODES} values; a profile is a short list of "
                              "models, techniques and settings", _line(event), path)
        if len(self._path) >= MAX_DEPTH:
            raise YamlRefused(f"nested more than {MAX_DEPTH} levels deep; a profile needs a "
                              "few", _line(event), path)
        self._path.append(path)
        try:
            return super().compose_node(parent, index)
        finally:
            self._path.pop()

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        path = self.paths.get(id(node), ())
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                raise YamlRefused("a key must be a plain name, not a list or mapping",
                                  _line(key_node), path) from None
            if first is not None:
                raise YamlRefused(f"key {key!r} appears twice in one mapping (lines {first} and "
                                  f"{_line(key_node)}); keep one", _line(key_node),
                                  path + (key,))
            seen[key] = _line(key_node)
        return super().construct_mapping(node, deep)

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except (YamlRefused, yaml.YAMLError):
            raise
        except (ValueError, TypeError, OverflowError, ArithmeticError) as exc:
            raise YamlRefused(f"cannot read this value ({exc}); write a plain number or text",
                              _line(node), self.paths.get(id(node), ())) from None


_Loader.add_implicit_resolver(FLOAT_TAG, _EXPONENT_FLOAT, list("-+.0123456789"))


class _Resolver(yaml.resolver.Resolver):
    """The loader's rules for what plain text is (YAML 1.1's booleans, nulls and numbers, and
    1e6 as a number)."""


_Resolver.add_implicit_resolver(FLOAT_TAG, _EXPONENT_FLOAT, list("-+.0123456789"))


def reads_as_text(value: str) -> bool:
    """Whether `value`, written without quotes, is read back as text: not `off`, `yes`, `1e6`,
    `null`... (a writer quotes those)."""
    return _Resolver().resolve(yaml.ScalarNode, value, (True, False)) == "tag:yaml.org,2002:str"


def _check_tree(root) -> tuple[dict[tuple, int], dict[int, tuple]]:
    """Scalars, keys and merge keys checked; the line of every key path and the path of every
    node (a tree: aliases were refused, so each node is visited once)."""
    lines: dict[tuple, int] = {}
    paths: dict[int, tuple] = {}
    stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        paths[id(node)] = path
        lines.setdefault(path, _line(node))
        if isinstance(node, yaml.ScalarNode):
            _check_scalar(node, path)
        elif isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise YamlRefused("a key must be a plain name, not a list or mapping",
                                      _line(key_node), path)
                if key_node.tag == MERGE_TAG:
                    raise YamlRefused("merge keys (<<) are not allowed: profiles do not use "
                                      "them; write the keys out", _line(key_node), path)
                _check_scalar(key_node, path)
                key_path = path + (key_node.value,)
                lines[key_path] = _line(key_node)
                stack.append((value_node, key_path))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, path + (i,)) for i, item in enumerate(node.value))
    return lines, paths


def _check_scalar(node, path: tuple) -> None:
    bad = _CONTROL.search(node.value)
    if bad:
        char = bad.group()
        name = unicodedata.name(char, "") or {"\n": "line feed", "\t": "tab", "\r":
                                              "carriage return"}.get(char, "control character")
        raise YamlRefused(f"control character U+{ord(char):04X} ({name.lower()}) in "
                          f"{node.value[:40]!r}; names, ids and paths are one line of printable "
                          "text: remove it", _line(node), path)
    if node.tag in (INT_TAG, FLOAT_TAG) and len(node.value) > MAX_NUMBER_CHARS:
        raise YamlRefused(f"a number of {len(node.value)} characters is not allowed; numbers in a "
                          f"profile are at most {MAX_NUMBER_CHARS} characters", _line(node), path)


def read_yaml(text: str) -> tuple[Any, dict[tuple, int]]:
    """The document's data and the 1-based line of every key path; YamlRefused or yaml.YAMLError
    (with a mark) for text that is not a profile's YAML."""
    if len(text) > MAX_PROFILE_CHARS:
        raise YamlRefused(f"the text is {len(text)} characters long; a profile is at most "
                          f"{MAX_PROFILE_CHARS} (split it, or remove what it does not need)")
    loader = None
    try:
        loader = _Loader(text)  # the reader refuses non-printable characters here
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines, loader.paths = _check_tree(node)
        return loader.construct_document(node), lines
    except ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
        raise YamlRefused(f"character U+{exc.character:04X} is not allowed in YAML text "
                          "(special characters are not); remove it", line) from None
    except (YamlRefused, yaml.YAMLError):
        raise
    except (RecursionError, MemoryError, ValueError, TypeError, ArithmeticError) as exc:
        # Defence in depth: the budgets above should keep PyYAML from getting here.
        raise YamlRefused(f"cannot read this YAML ({type(exc).__name__}: {exc}); simplify the "
                          "profile to the documented shape") from None
    finally:
        if loader is not None:
            loader.dispose()


def decode(data: bytes) -> str:
    """UTF-8 text, or YamlRefused naming the line and byte that are not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise YamlRefused(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                          "save the profile as UTF-8", line) from None
