"""deltapref: offline preference optimization that uses how much one response beats another."""

__version__ = "0.1.0"
