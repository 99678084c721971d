"""`python -m mlops_serving.monitor` is the same entry point as the `mlops-monitor` console script."""
import sys

from .main import main

sys.exit(main())
