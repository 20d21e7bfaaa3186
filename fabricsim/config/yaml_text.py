"""Reading YAML safely: UTF-8 text only, bounded in size, nesting and alias expansion, duplicate keys
refused, and no YAML 1.1 base-60 numbers (``2:1`` stays the text "2:1" instead of the number 121).

Errors are ``YamlProblem``s: "malformed YAML at line L, column C: <PyYAML's problem>", or one line
saying which bound was passed; the part after the position may quote the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

MAX_FILE_BYTES = 4 * 2**20  # a scenario, a model or a sample file
MAX_VALUES = 1_000_000  # values in a document once its aliases are expanded
MAX_DEPTH = 64  # levels of nesting


class YamlProblem(ValueError):
    """Why a YAML file or text cannot be read, in one line."""


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader without base-60 numbers, refusing duplicate keys."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


_BASE_60 = (r"|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+", r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*")


def _without_base_60(pattern: re.Pattern) -> re.Pattern:
    text = pattern.pattern
    for alternative in _BASE_60:
        text = text.replace(alternative, "")
    return re.compile(text, pattern.flags)


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, _without_base_60(pattern) if tag.endswith((":int", ":float")) else pattern)
            for tag, pattern in resolvers]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_yaml_file(path: Path) -> object:
    """The YAML document in a file, checked as the module says."""
    return load_yaml_text(read_text_file(path))


def read_text_file(path: Path) -> str:
    """A file's text: UTF-8, at most MAX_FILE_BYTES."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise YamlProblem(f"cannot read the file ({error.strerror})") from None
    if len(data) > MAX_FILE_BYTES:
        raise YamlProblem(f"expected a file of at most {MAX_FILE_BYTES // 2**20} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise YamlProblem(f"expected UTF-8 text, byte {error.start} is not (a binary, Latin-1 or UTF-16 file?)") \
            from None


def load_yaml_text(text: str) -> object:
    """One YAML document from text (a file's, or a --set value)."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except RecursionError:
        raise YamlProblem(f"expected at most {MAX_DEPTH} levels of nesting") from None
    except yaml.reader.ReaderError as error:
        raise YamlProblem(f"malformed YAML: a control character at character {error.position} is not allowed") \
            from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "not YAML"
        raise YamlProblem(f"malformed YAML{at}: {problem}") from None
    _check_bounds(data)
    return data


def _check_bounds(data: object) -> None:
    """Refuse recursive aliases, nesting beyond MAX_DEPTH and more than MAX_VALUES values once aliases
    are expanded (an alias bomb), counting each shared node once: fast however large the expansion."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: object, depth: int) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        if depth > MAX_DEPTH:
            raise YamlProblem(f"expected at most {MAX_DEPTH} levels of nesting")
        key = id(node)
        if key in open_nodes:
            raise YamlProblem("expected no recursive alias (a value that holds itself)")
        if key not in sizes:
            open_nodes.add(key)
            children = node.values() if isinstance(node, dict) else node
            sizes[key] = 1 + sum(size(child, depth + 1) for child in children)
            open_nodes.discard(key)
            if sizes[key] > MAX_VALUES:
                raise YamlProblem(f"expected at most {MAX_VALUES} values once aliases are expanded (an alias bomb?)")
        return sizes[key]

    size(data, 0)
