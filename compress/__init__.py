"""edgeship.compress — pruning, distillation, quantization-aware training, and the accuracy budget's bookkeeping.

Model transforms only: the converters and quantizers live in ``edgeship.export``,
and ``edgeship.variants`` (the orchestrator) drives the budget loop over them.

Needs ``edgeship[build]``.
"""

from .backoff import PruneAttempt as PruneAttempt
from .backoff import default_fine_tune_epochs as default_fine_tune_epochs
from .backoff import iter_prune_attempts as iter_prune_attempts
from .backoff import prune_attempts_table as prune_attempts_table
from .backoff import prune_budget_error as prune_budget_error
from .backoff import prune_to_budget as prune_to_budget
from .budget import Attempt as Attempt
from .budget import attempts_table as attempts_table
from .budget import effective_budget as effective_budget
from .channel_backoff import ChannelAttempt as ChannelAttempt
from .channel_backoff import channel_attempts_table as channel_attempts_table
from .channel_backoff import channel_budget_error as channel_budget_error
from .channel_backoff import fine_tune_channels as fine_tune_channels
from .channel_backoff import iter_channel_attempts as iter_channel_attempts
from .channels import ChannelGroup as ChannelGroup
from .channels import ChannelReport as ChannelReport
from .channels import channel_groups as channel_groups
from .channels import count_macs as count_macs
from .channels import prune_channels as prune_channels
from .distill import Distillation as Distillation
from .distill import distillation_loss as distillation_loss
from .distill import distiller as distiller
from .fold import FoldReport as FoldReport
from .fold import fold_batchnorm as fold_batchnorm
from .prune import PruneSchedule as PruneSchedule
from .prune import excluded_layers as excluded_layers
from .prune import prune as prune
from .prune import sparsity_report as sparsity_report
from .prune import tflite_weight_sparsity as tflite_weight_sparsity
from .qat import qat_float_weights as qat_float_weights
from .qat import quantize_aware as quantize_aware

__all__ = [
    "Attempt", "ChannelAttempt", "FoldReport", "fold_batchnorm", "channel_attempts_table", "channel_budget_error", "fine_tune_channels",
    "iter_channel_attempts", "ChannelGroup", "ChannelReport", "channel_groups", "count_macs", "prune_channels", "Distillation", "distillation_loss", "distiller", "PruneAttempt", "PruneSchedule", "attempts_table",
    "default_fine_tune_epochs", "effective_budget", "excluded_layers", "iter_prune_attempts", "prune",
    "prune_attempts_table", "prune_budget_error", "prune_to_budget", "qat_float_weights", "quantize_aware",
    "sparsity_report", "tflite_weight_sparsity",
]
