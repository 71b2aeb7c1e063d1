"""leakscan: find exact and near-duplicate images and the train/val/test leakage they cause."""

from ._version import __version__
from .errors import ArgumentError, ConfigError, InputError, LeakscanError, OutputError
from .discovery import discover
from .manifest import Manifest
from .features import Features, extract_features
from .settings import DetectSettings
from .pairs import PairTable
from .decide import find_pairs
from .groups import Groups, build_groups
from .audit import Audit, audit
from .report import write_outputs
from .split import assign_splits
from .resplit import Resplit, resplit
from .model_selection import StratifiedGroupShuffleSplit, find_groups, train_test_split
from .decisions import Decisions, apply_decisions, read_decisions

__all__ = [
    "__version__",
    "audit",
    "Audit",
    "write_outputs",
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
    "read_decisions",
    "apply_decisions",
    "Decisions",
    "LeakscanError",
    "InputError",
    "ConfigError",
    "OutputError",
    "ArgumentError",
]
