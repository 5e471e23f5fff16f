"""DeepDream, filter visualisation and activation grids, as ``keras_cv_apps.dream``.

    from keras_cv_apps import dream
    out = dream.deep_dream(model, image, layers={"mixed3": 1.0, "mixed5": 1.5})

The implementation lives in `keras_cv_apps.explain.dream` (and `explain.visualize`); this
module only gives it a short name.
"""

from keras_cv_apps.explain.dream import (
                                         Dreamer,
                                         deep_dream,
                                         default_layers,
                                         dream_windows,
                                         objective,
                                         octave_shapes,
                                         parse_layers,
)
from keras_cv_apps.explain.visualize import activation_grid, visualize_filters

__all__ = ["Dreamer", "activation_grid", "deep_dream", "default_layers", "dream_windows", "objective",
           "octave_shapes", "parse_layers", "visualize_filters"]
