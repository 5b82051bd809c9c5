"""The version of soundslike_nb (one place; the package and library files read it)."""

__version__ = "0.1.0"
