"""The package version (written into reports so a reader knows which rules counted)."""

VERSION = "0.1.0"
