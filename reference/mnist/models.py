"""The seeds' MNIST models: the 784-128-10 MLP (seeds 000/001) and the small CNN (seed 004)."""

from __future__ import annotations

from torch import nn


class MnistMLP(nn.Module):
    """Flatten, 784-128 ReLU, 128-10; state_dict keys ``fc1.*`` and ``fc2.*`` as the seeds' ``SimpleNN``.

    >>> from reference.models import count_parameters
    >>> count_parameters(MnistMLP()), sorted(MnistMLP().state_dict())[:2]
    (101770, ['fc1.bias', 'fc1.weight'])
    """

    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(28 * 28, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):  # (B, 1, 28, 28) -> (B, 10)
        return self.fc2(self.relu(self.fc1(self.flatten(x))))


class MnistCNN(nn.Module):
    """Two 3x3 conv blocks (16 and 32 channels, each halving the size) then a 1568-128-10 head.

    >>> from reference.models import count_parameters
    >>> count_parameters(MnistCNN())
    206922
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),  # (B, 16, 28, 28)
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 16, 14, 14)
            nn.Conv2d(16, 32, 3, padding=1),  # (B, 32, 14, 14)
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 32, 7, 7)
        )
        self.fc = nn.Sequential(
            nn.Flatten(),  # (B, 1568)
            nn.Linear(32 * 7 * 7, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )

    def forward(self, x):  # (B, 1, 28, 28) -> (B, 10)
        return self.fc(self.conv(x))
