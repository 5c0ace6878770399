"""gaitedge training: MAE pretraining and fine-tuning on windows from the runtime's chain.

Stages: ``data`` (chain windows, labels, subject splits) -> ``augment`` -> ``model`` (MAE and
heads) -> ``engine`` (the one loop, with ``objectives``) -> ``pretrain`` / ``finetune`` ->
``evaluate``; ``export.distill`` trains the edge student through the same loop.
"""

from gaitedge.datasets import FALL_CLASSES, HAPT_LABELS, SISFALL_TEST_SUBJECTS, SubjectSplit
from train.augment import AugmentConfig, Augmenter
from train.config import AmpMode, TrainConfig
from train.data import WindowSet, load_windows, prepare
from train.engine import NonFiniteLossError, fit, lr_at
from train.model import (
    PRESETS,
    IMUMaskedAutoencoder,
    MaskMode,
    ModelConfig,
    load_checkpoint,
    preset_config,
)
from train.objectives import ClassifierObjective, DistillObjective, class_weights

__all__ = [
    "FALL_CLASSES",
    "HAPT_LABELS",
    "PRESETS",
    "SISFALL_TEST_SUBJECTS",
    "AmpMode",
    "AugmentConfig",
    "Augmenter",
    "ClassifierObjective",
    "DistillObjective",
    "IMUMaskedAutoencoder",
    "MaskMode",
    "ModelConfig",
    "NonFiniteLossError",
    "SubjectSplit",
    "TrainConfig",
    "WindowSet",
    "class_weights",
    "fit",
    "load_checkpoint",
    "load_windows",
    "lr_at",
    "prepare",
    "preset_config",
]
