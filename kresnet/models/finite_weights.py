"""Whether a model's weights are all finite: a NaN or infinity in any of them makes every output meaningless."""

import keras
import numpy as np


def first_non_finite(variables):
    """The path of the first floating-point variable holding a NaN or infinity, or None.

    Args:
        variables: Keras variables (model weights, optimizer variables).
    """
    for variable in variables:
        if "float" not in str(variable.dtype):
            continue
        if not np.isfinite(keras.ops.convert_to_numpy(variable)).all():
            return getattr(variable, "path", variable.name)
    return None
