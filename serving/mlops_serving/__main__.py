"""`python -m mlops_serving` is the same entry point as the `mlops-serve` console script."""
import sys

from .main import main

sys.exit(main())
