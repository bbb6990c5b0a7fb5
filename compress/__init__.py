"""edgeship.compress — pruning and quantization settings (needs ``edgeship[build]``)."""

from .prune import prune as prune
from .prune import sparsity_report as sparsity_report

__all__ = ["prune", "sparsity_report"]
