"""A small transformer encoder on the same vibration window, for contrast with the Bi-LSTM.

The 1024 samples are cut into 64 patches of 16 (a strided Conv1d embeds each), two pre-norm
encoder layers mix the 64 tokens, and the mean token is classified. Every operator is a
matrix product or an elementwise op the NPU runs at full rate; nothing is recurrent.
"""

from __future__ import annotations

import torch
from torch import nn


class SignalTransformer(nn.Module):
    """Patch embedding, ``depth`` pre-norm encoder layers, mean pooling, linear head."""

    def __init__(self, num_classes: int = 10, length: int = 1024, patch: int = 16,
                 dim: int = 64, depth: int = 2, heads: int = 4, ffn: int = 128) -> None:
        super().__init__()
        self.embed = nn.Conv1d(1, dim, patch, stride=patch)
        self.pos = nn.Parameter(torch.zeros(1, length // patch, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, ffn, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 1024)
        tokens = self.embed(x).transpose(1, 2) + self.pos  # (B, 64, 64)
        return self.head(self.norm(self.encoder(tokens).mean(dim=1)))
