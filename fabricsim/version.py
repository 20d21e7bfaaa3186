"""The version of fabricsim, a leaf: result folders, baselines and the command line name it."""

__version__ = "0.1.0"
