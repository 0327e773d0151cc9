"""``python -m runner WORKFLOW.json [...]`` from the repository root: run a workflow headless."""
import sys

from .headless import main

sys.exit(main())
