"""Dataset recipes: public benchmark sets converted into a corpus folder and a golden set."""

from sage_platform.datasets.pubmedqa import ImportStats, import_pubmedqa

DATASETS = {"pubmedqa": import_pubmedqa}

__all__ = ["DATASETS", "ImportStats", "import_pubmedqa"]
