"""Seed 000: a vibration-signal fault classifier for an edge NPU.

One accelerometer channel, 1024 samples per window, 10 fault classes. A Conv1d front end
shrinks the window 8x and widens it to 128 channels, a bidirectional LSTM reads the 128 steps,
additive attention pools them into one 256-vector, and an MLP head classifies it:

    (1, 1, 1024) -conv x4, pool x3-> (1, 128, 128) -> (1, 128 steps, 128)
                 -Bi-LSTM-> (1, 128, 256) -attention-> (1, 256) -> x + LayerNorm(x)
                 -MLP-> (1, 10)

On the seed's NPU this network spent ~98% of its time in the Bi-LSTM: its 256 dependent
steps (128 per direction) are small matrix-vector products the MAC array cannot fill.
"""

from __future__ import annotations

import torch
from torch import nn


class AdditiveAttention(nn.Module):
    """Scores every step against a learned query and returns the softmax-weighted sum."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.query = nn.Parameter(torch.randn(dim) / dim**0.5)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # h: (B, T, D)
        scores = torch.tanh(self.proj(h)) @ self.query  # (B, T)
        weights = torch.softmax(scores, dim=1)
        return torch.bmm(weights.unsqueeze(1), h).squeeze(1)  # (B, D)


class VibrationNet(nn.Module):
    """Conv1d front end, Bi-LSTM, attention, residual LayerNorm, MLP head (seed 000)."""

    def __init__(self, num_classes: int = 10, hidden: int = 128) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv1d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(64, hidden, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2),
        )
        # the seed's "two-layer" LSTM is one layer run in both directions (its 43% x 2)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True, bidirectional=True)
        self.attention = AdditiveAttention(2 * hidden)
        self.norm = nn.LayerNorm(2 * hidden)
        self.head = nn.Sequential(nn.Linear(2 * hidden, 500), nn.ReLU(), nn.Dropout(0.5),
                                  nn.Linear(500, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 1024)
        steps = self.features(x).transpose(1, 2)  # (B, 128 steps, 128 features)
        h, _ = self.lstm(steps)  # (B, 128, 256)
        context = self.attention(h)  # (B, 256)
        return self.head(context + self.norm(context))
