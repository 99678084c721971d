"""`python -m mlops_serving.monitor` is the same entry point as the `mlops-monitor` console script.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts)."""
import sys

from .main import main

sys.exit(main())
