"""leakscan: find exact and near-duplicate images and the train/val/test leakage they cause."""

__version__ = "0.1.0"

from .errors import ConfigError, InputError, LeakscanError, OutputError  # noqa: E402
from .manifest import Manifest, discover  # noqa: E402
from .features import Features, extract_features  # noqa: E402
from .settings import DetectSettings  # noqa: E402
from .pairs import PairTable, find_pairs  # noqa: E402
from .groups import Groups, build_groups  # noqa: E402
from .audit import Audit, audit  # noqa: E402
from .split import Resplit, assign_splits, resplit  # noqa: E402
from .model_selection import StratifiedGroupShuffleSplit, find_groups, train_test_split  # noqa: E402

__all__ = [
    "__version__",
    "audit",
    "Audit",
    "discover",
    "Manifest",
    "extract_features",
    "Features",
    "find_pairs",
    "PairTable",
    "DetectSettings",
    "build_groups",
    "Groups",
    "resplit",
    "Resplit",
    "assign_splits",
    "find_groups",
    "train_test_split",
    "StratifiedGroupShuffleSplit",
    "LeakscanError",
    "InputError",
    "ConfigError",
    "OutputError",
]
