"""Reading and writing the TOML files the package uses (``pyproject.toml``, device files).

Reading: :func:`read_toml` turns every way a file can be unreadable (missing permissions, not
UTF-8, not TOML) into one :class:`TomlError` whose message names the file. Writing:
:func:`table_toml` writes a table and its sub-tables under a dotted header.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class TomlError(ValueError):
    """A TOML file cannot be read or parsed; the message names the file."""


def parse_toml(text: str, where: str) -> dict[str, Any]:
    """The document in ``text``; :class:`TomlError` naming ``where`` if it is not TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TomlError(f"{where} is not valid TOML: {exc}") from None


def read_toml(path: Path | str, where: str | None = None) -> dict[str, Any]:
    """The document in the file at ``path`` (``where`` names it in errors, default the path)."""
    where = where or str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise TomlError(f"{where} cannot be read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TomlError(f"{where} is not UTF-8 text (byte {exc.start}: "
                        f"{raw[exc.start:exc.start + 1]!r}); TOML files must be UTF-8") from None
    return parse_toml(text, where)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} to TOML")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a valid TOML basic string (ASCII, \uXXXX escapes)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def key(name: str) -> str:
    """A TOML key: bare when it can be, else quoted."""
    bare = name and all(c.isascii() and (c.isalnum() or c in "-_") for c in name)
    return name if bare else json.dumps(name)


def table_toml(prefix: str, table: Mapping[str, Any], header: str = "") -> str:
    """``table`` as TOML under ``[prefix]``, sub-tables as ``[prefix.KEY]``; ``header`` lines
    become comments on top. ``prefix`` is written as given (quote its parts with :func:`key`)."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines.append(f"[{prefix}]")
    subtables = []
    for name, value in table.items():
        if isinstance(value, Mapping):
            subtables.append((name, value))
        elif value is not None:
            lines.append(f"{key(name)} = {_value(value)}")
    for name, sub in subtables:
        lines.append("")
        lines.append(f"[{prefix}.{key(name)}]")
        lines.extend(f"{key(k)} = {_value(v)}" for k, v in sub.items())
    return "\n".join(lines) + "\n"
