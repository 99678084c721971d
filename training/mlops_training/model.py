"""The tabular model, with its preprocessing inside so the exported graph takes the contract's tensor.

Input: float32 `[N, F]` encoded per docs/contracts.md section 2. Inside: numeric NaN -> the training
mean, standardisation, a null indicator per nullable feature, one-hot per String feature (slot 0 is
unknown, and a null String also lands there, flagged by its null indicator), then an MLP.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
import numpy as np
import torch
from torch import nn

from mlops_training.schema import FeatureSchema


class TabularNet(nn.Module):
    """Preprocessing + MLP; `forward` returns the raw output (a logit, or the standardised target)."""

    def __init__(
        self,
        *,
        schema: FeatureSchema,
        categories: Mapping[str, Sequence[str]],
        hidden_units: Sequence[int],
    ) -> None:
        super().__init__()
        numeric = [j for j, f in enumerate(schema.features) if f.is_numeric]
        nullable = [j for j, f in enumerate(schema.features) if f.nullable]
        strings = [j for j, f in enumerate(schema.features) if not f.is_numeric]
        # One one-hot block per String feature: slot 0 = unknown/null, then one slot per category.
        sizes = [len(categories[schema.features[j].name]) + 1 for j in strings]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if sizes else np.zeros(0, np.int64)
        self.register_buffer("numeric_index", torch.tensor(numeric, dtype=torch.long))
        self.register_buffer("numeric_mean", torch.zeros(len(numeric)))
        self.register_buffer("numeric_std", torch.ones(len(numeric)))
        self.register_buffer("nullable_index", torch.tensor(nullable, dtype=torch.long))
        self.register_buffer("string_index", torch.tensor(strings, dtype=torch.long))
        self.register_buffer("string_size", torch.tensor(sizes, dtype=torch.float32))
        self.register_buffer("string_offset", torch.from_numpy(offsets))
        self.register_buffer("target_mean", torch.zeros(()))
        self.register_buffer("target_std", torch.ones(()))
        self.one_hot_width = int(sum(sizes))
        width = len(numeric) + len(nullable) + self.one_hot_width
        self.mlp_input_width = width
        layers: list[nn.Module] = []
        for units in hidden_units:
            layers += [nn.Linear(width, units), nn.ReLU()]
            width = units
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    @torch.no_grad()
    def fit_statistics(self, *, features: torch.Tensor, target: torch.Tensor, standardize_target: bool) -> None:
        """Set imputation/scaling statistics (and the target's, for regression) from training data."""
        numeric = features.index_select(1, self.numeric_index).double()
        present = ~torch.isnan(numeric)
        count = present.sum(0).clamp(min=1)
        mean = torch.where(present, numeric, 0.0).sum(0) / count
        var = torch.where(present, (numeric - mean) ** 2, 0.0).sum(0) / count
        std = var.sqrt()
        # A constant (or all-null) column carries no scale; dividing by 1 leaves it at 0 after centring.
        std = torch.where(std > 1e-12, std, torch.ones_like(std))
        self.numeric_mean.copy_(mean.float())
        self.numeric_std.copy_(std.float())
        if standardize_target:
            y = target.double()
            self.target_mean.copy_(y.mean().float())
            self.target_std.copy_(y.std(unbiased=False).clamp(min=1e-12).float())

    def encode_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Contract tensor -> the MLP's input (imputed, scaled, null flags, one-hot)."""
        numeric = x.index_select(1, self.numeric_index)
        numeric = torch.where(torch.isnan(numeric), self.numeric_mean, numeric)
        numeric = (numeric - self.numeric_mean) / self.numeric_std
        null_flags = torch.isnan(x.index_select(1, self.nullable_index)).to(x.dtype)
        codes = x.index_select(1, self.string_index)
        # NaN (null), negative, fractional or beyond-vocabulary codes all go to slot 0 (unknown).
        valid = (codes >= 0) & (codes < self.string_size) & (codes == torch.floor(codes))
        codes = torch.where(valid, codes, torch.zeros_like(codes)).long() + self.string_offset
        one_hot = torch.zeros(x.shape[0], self.one_hot_width, dtype=x.dtype, device=x.device)
        one_hot.scatter_(1, codes, 1.0)
        return torch.cat([numeric, null_flags, one_hot], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw output `[N]`: the logit (binary) or the standardised prediction (regression)."""
        return self.mlp(self.encode_inputs(x)).squeeze(1)


class Predictor(nn.Module):
    """What `model.pt` holds: the contract's output (probability of class 1, or the value)."""

    def __init__(self, net: TabularNet, *, binary: bool) -> None:
        super().__init__()
        self.net = net
        self.binary = binary

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float32 `[N, F]` -> float32 `[N]`."""
        out = self.net(x.float())
        if self.binary:
            return torch.sigmoid(out)
        return out * self.net.target_std + self.net.target_mean


def build_model(
    *, schema: FeatureSchema, categories: Mapping[str, Sequence[str]], hidden_units: Sequence[int], seed: int
) -> TabularNet:
    """A freshly initialised `TabularNet`; the same seed gives the same initial weights."""
    # A private generator state would be cleaner, but nn.Linear initialises from the global one.
    torch.manual_seed(seed)
    return TabularNet(schema=schema, categories=categories, hidden_units=hidden_units)
