"""Reading the YAML files users write (recipes, ``--config`` option files) as plain values only:
the safe loader (no custom tags), a size cap, a cap on values after alias expansion (a
nested-anchor "bomb" is refused before it is built), and no key repeated in a mapping (YAML would
keep the last silently). Every problem is one ``ValueError`` naming the file and line. Imports
nothing from deltapref."""

from __future__ import annotations

from pathlib import Path

import yaml

YAML_MAX_BYTES = 1 << 20  # recipes and option files are small; anything larger is refused unread
YAML_MAX_VALUES = 100_000  # values after alias expansion (a nested-anchor "bomb" expands to billions)


def read_yaml(path: str | Path):
    """A YAML document of plain values (safe loader: no custom tags), refused in one line
    (``ValueError`` naming the file and line) when it is not valid YAML, larger than
    ``YAML_MAX_BYTES`` or expands to more than ``YAML_MAX_VALUES`` values through aliases."""
    path = Path(path)
    try:
        if path.stat().st_size > YAML_MAX_BYTES:
            raise ValueError(f"{path}: larger than {YAML_MAX_BYTES} bytes; a recipe or option file is far smaller")
        loader = yaml.SafeLoader(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read it ({getattr(error, 'strerror', None) or error})") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded = _expanded_size(node, {})
        if expanded > YAML_MAX_VALUES:
            raise ValueError(
                f"{path}: its aliases expand to more than {YAML_MAX_VALUES} values ({expanded}); refusing to build it"
            )
        _refuse_repeated_keys(path, node, set())
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not a plain YAML document ({_yaml_reason(error)})") from None
    finally:
        loader.dispose()


def _refuse_repeated_keys(path: Path, node, seen: set) -> None:
    """Refuse a mapping that names a key twice (YAML would keep the last value silently)."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if key.value in keys:
                    first = keys[key.value]
                    raise ValueError(
                        f"{path}: line {key.start_mark.line + 1}: key {key.value!r} repeats the one on line "
                        f"{first + 1}; YAML would silently keep only the last"
                    )
                keys[key.value] = key.start_mark.line
            _refuse_repeated_keys(path, value, seen)
    elif isinstance(node, yaml.SequenceNode):
        for child in node.value:
            _refuse_repeated_keys(path, child, seen)


def _expanded_size(node, sizes: dict) -> int:
    """How many values ``node`` holds once every alias is expanded (aliases share their node,
    so each node's size is computed once)."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = 1  # a node that contains itself counts once
    children = node.value if isinstance(node, yaml.SequenceNode) else []
    if isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    size = 1 + sum(_expanded_size(child, sizes) for child in children)
    sizes[id(node)] = min(size, YAML_MAX_VALUES + 1)
    return sizes[id(node)]


def _yaml_reason(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return f"{where}{problem}"
