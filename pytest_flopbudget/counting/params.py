"""Which module owns which parameter, and what the parameters weigh."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..core.access import ZERO_ACCESS, Access
from ..core.paths import under


@dataclass(frozen=True)
class ParamLayout:
    """Which parameters each module owns. Names are canonical (first) parameter names, so a
    tied weight appears once."""

    numel: dict[str, int]  # canonical parameter name -> elements
    sizes: dict[str, Access]  # canonical name -> its bytes (re-priced by dtype)
    owned: dict[str, list[str]]  # module path -> canonical names it holds directly
    first_owner: dict[str, str]  # canonical name -> module path counted as its owner
    kinds: dict[str, str]  # module path -> class name
    buffers: int  # buffer elements (unique)

    @classmethod
    def of(cls, model: nn.Module) -> ParamLayout:
        canonical: dict[int, str] = {}
        numel: dict[str, int] = {}
        sizes: dict[str, Access] = {}
        for name, p in model.named_parameters():
            canonical[id(p)] = name
            numel[name] = p.numel()
            sizes[name] = Access.sized(p.numel(), p.numel() * p.element_size(), p.dtype)
        owned: dict[str, list[str]] = {}
        first_owner: dict[str, str] = {}
        kinds: dict[str, str] = {}
        for path, module in model.named_modules(remove_duplicate=False):
            kinds.setdefault(path, type(module).__name__)
            names = [canonical[id(p)] for p in module._parameters.values() if p is not None]
            if names:
                owned.setdefault(path, [])
                for n in names:
                    if n not in owned[path]:
                        owned[path].append(n)
                    first_owner.setdefault(n, path)
        buffers = sum(b.numel() for b in model.buffers())
        return cls(numel, sizes, owned, first_owner, kinds, buffers)

    def own_params(self, path: str) -> int:
        """Elements of the parameters counted at ``path`` (their first owner)."""
        return sum(self.numel[n] for n in self.owned.get(path, ()) if
                   self.first_owner[n] == path)

    def subtree_names(self, path: str) -> set[str]:
        """Canonical names of the parameters held anywhere under ``path`` (each once)."""
        return {n for p, held in self.owned.items() if under(p, path) for n in held}

    def subtree_params(self, path: str) -> int:
        """Unique parameter elements held anywhere under ``path``."""
        return sum(self.numel[n] for n in self.subtree_names(path))

    def subtree_weight_bytes(self, path: str, dtype: str | None) -> int:
        """Bytes of the parameters held under ``path``, at their own dtype or at ``dtype``."""
        names = self.subtree_names(path)
        return sum((self.sizes[n] for n in sorted(names)), ZERO_ACCESS).bytes(dtype)

    def weight_bytes(self, dtype: str | None) -> int:
        """Bytes of all parameters at their own dtype or at a deployment precision."""
        return sum(self.sizes.values(), ZERO_ACCESS).bytes(dtype)
