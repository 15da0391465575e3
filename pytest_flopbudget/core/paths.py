"""Module paths: how layers are named (``model.named_modules()`` paths, ``""`` for the model
itself) and which layers lie under which."""

from __future__ import annotations

#: The path of the model itself.
ROOT = ""


def under(path: str, root: str) -> bool:
    """True when the module at ``path`` is ``root`` or one of its descendants."""
    return root == ROOT or path == root or path.startswith(root + ".")
