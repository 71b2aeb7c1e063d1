"""The version of leakscan (its own module, so no submodule imports the package __init__)."""

__version__ = "0.1.0"
