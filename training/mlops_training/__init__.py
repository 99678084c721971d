"""Training container of mlops-platform: a PyTorch trainer for tabular models.

The same entry point (`mlops-train`, `mlops_training.main:main`) runs inside SageMaker, under
`torchrun` on Kubernetes and as a plain local process.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mlops-training")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
