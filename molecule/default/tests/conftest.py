"""Make molecule/tests_common importable (the scenarios share it; debian13 reuses these tests)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
