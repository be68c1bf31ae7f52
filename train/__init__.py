"""The CoDA training pipeline (not built yet: see README.md)."""
