"""The unit's models, with the course's layer layout (``self.net`` sequentials)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


class SimpleMLP(nn.Module):
    """2-16-16-8-3 ReLU MLP of the unit: 483 parameters with the defaults."""

    def __init__(self, input_dim: int = 2, hidden_dim: int = 16, num_classes: int = 3) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(input_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim // 2),
            nn.ReLU(),
            nn.Linear(hidden_dim // 2, num_classes),
        )

    def forward(self, x):  # x: (B, input_dim) -> (B, num_classes)
        return self.net(x)


class TinyMLP(nn.Module):
    """A ReLU MLP with the given hidden widths; ``TinyMLP((5,))`` is the course's 33-parameter answer.

    >>> count_parameters(TinyMLP((5,))), count_parameters(TinyMLP((3,)))
    (33, 21)
    """

    def __init__(self, hidden: Sequence[int] = (5,), input_dim: int = 2, num_classes: int = 3) -> None:
        super().__init__()
        if any(h < 1 for h in hidden):
            raise ValueError(f"expected positive hidden widths, got {tuple(hidden)}")
        layers: list[nn.Module] = []
        width = input_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.hidden = tuple(hidden)
        self.net = nn.Sequential(*layers)

    def forward(self, x):  # (B, input_dim) -> (B, num_classes)
        return self.net(x)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, as torchinfo's "Trainable params" line counts them."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def mlp_parameter_count(hidden: Sequence[int], input_dim: int = 2, num_classes: int = 3) -> int:
    """Closed form of ``count_parameters(TinyMLP(hidden))`` without building it."""
    widths = [input_dim, *hidden, num_classes]
    return sum((a + 1) * b for a, b in zip(widths, widths[1:]))
