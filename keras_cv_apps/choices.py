"""The named choices users pick from (flags, function arguments), in one light module.

The modules that implement them import these tuples, and the apps build their ``--help`` and
error messages from them without importing TensorFlow.
"""

SCALES = ("unit", "symmetric", "standardize")
QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")
INT8_IO = ("uint8", "int8", "float32")
# what the TFLite files of a classifier take: RGB (1-channel models behind a luma front) or the model's own input
TFLITE_INPUTS = ("rgb", "native")
STRATEGIES = ("default", "mirrored", "multiworker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("plateau", "cosine", "onecycle", "constant")
BALANCE_MODES = ("none", "weights", "oversample", "undersample", "focal")
ALEXNET_NORMS = ("batchnorm", "lrn", "none")
TRIPLET_MININGS = ("batch_all", "batch_hard", "semi_hard")
METRIC_LOSSES = ("supcon", "triplet", "contrastive")
# data.augment.PRESETS; the last one mixes labels (MixUp/CutMix) and needs a loss for soft labels
AUGMENT_PRESETS = ("none", "light", "digits", "standard", "noisy", "strong")
LABEL_MIXING_PRESETS = ("strong",)
TRANSFER_MODES = ("linear", "finetune", "lp-ft")
TRANSFER_RECIPES = ("default", "bit-hyperrule", "vit")
