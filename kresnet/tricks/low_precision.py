"""`precision = "auto"`: the mixed-precision policy the machine's accelerator is fastest with.

bfloat16 where the accelerator computes in it natively (TPUs, NVIDIA compute capability
8.0 and later: A100, H100, H200), float16 with loss scaling on older GPUs, and float32 on
a CPU, where half precision is emulated and slower. Asking the backend is the only
backend-specific step; everything after it is a Keras dtype policy. Keras is imported
lazily so recipe schemas can name `PRECISIONS` without loading a backend.
"""

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def accelerator():
    """("tpu" | "gpu" | "cpu", whether it computes natively in bfloat16) for the active backend."""
    import keras

    backend = keras.config.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "tpu":
            return "tpu", True
        if device.platform == "gpu":
            capability = getattr(device, "compute_capability", None)
            return "gpu", capability is None or float(capability) >= 8.0
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return "gpu", torch.cuda.is_bf16_supported()
    elif backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
            return "gpu", tuple(capability) >= (8, 0)
    return "cpu", False


def resolve_precision(precision, device=None):
    """The dtype policy name for a recipe's `train.precision`.

    Args:
        precision: str. One of `PRECISIONS`; anything but "auto" is returned unchanged.
        device: optional ("tpu"|"gpu"|"cpu", bfloat16 support); default: `accelerator()`.
    """
    if precision != "auto":
        return precision
    kind, native_bfloat16 = device or accelerator()
    if kind == "cpu":
        return "float32"
    return "mixed_bfloat16" if native_bfloat16 else "mixed_float16"


def precision(policy="auto"):
    """Low-precision training (paper section 3.2): set Keras' global dtype policy, return its name.

    Layers then compute in half precision with float32 weights (the paper's FP16 with an
    FP32 master copy); compile with `auto_scale_loss=True` (Keras' default) so that under
    mixed_float16 the loss is scaled, i.e. gradients of S * loss are divided by S before the
    update. Call it before building the model; keep logits in float32.

    Args:
        policy: str. "auto" (the fastest for this machine, see `resolve_precision`),
            "float32", "mixed_float16" or "mixed_bfloat16".

    Example:
        precision("auto")   # "mixed_bfloat16" on an H100, "float32" on a CPU
    """
    import keras

    if policy not in PRECISIONS:
        raise ValueError(f"precision: expected one of {', '.join(PRECISIONS)}. Received: policy={policy!r}")
    name = resolve_precision(policy)
    keras.config.set_dtype_policy(name)
    return name


def set_precision(precision_name):
    """The recipe's `train.precision`: `precision(precision_name)`."""
    return precision(precision_name)
