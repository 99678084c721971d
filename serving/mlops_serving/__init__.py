"""mlops-serving: the SageMaker-compatible inference server of mlops-platform.

The app factory is `mlops_serving.app.create_app`; the entry point is `mlops_serving.main:main`.
This module imports nothing heavy so that `mlops-serve --help` answers without loading torch.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from .settings import Settings

__version__ = "0.1.0"
__all__ = ["Settings", "__version__"]
