"""Classification losses on logits with soft targets: label smoothing and the distillation term.

Label smoothing uses Keras' `label_smoothing`, i.e. targets y * (1 - eps) + eps / K,
which is what the paper's own code (GluonCV) trained with. The paper's text writes
1 - eps for the true class and eps / (K - 1) for the others: its true-class target is
lower by eps / K (1e-4 for ImageNet at eps = 0.1) and each other target higher by
eps / (K (K - 1)) (1e-7). We do not reproduce that variant separately.
"""

import keras
from keras import ops


def smooth_labels(targets, epsilon):
    """Label-smoothed targets: y * (1 - epsilon) + epsilon / K.

    Args:
        targets: one-hot (or mixed) targets, shape (batch, K).
        epsilon: the smoothing amount in [0, 1).
    """
    targets = ops.convert_to_tensor(targets, "float32")
    num_classes = ops.shape(targets)[-1]
    return targets * (1.0 - epsilon) + epsilon / num_classes


@keras.saving.register_keras_serializable(package="kresnet")
class LabelSmoothingCrossEntropy(keras.losses.CategoricalCrossentropy):
    """Keras' `CategoricalCrossentropy` that also takes integer class indices, as timm's loss does.

    Targets of shape (batch,) or (batch, 1) against logits (batch, K) are class indices and are
    one-hot encoded first; (batch, K) targets are one-hot or soft (mixup) and used as they are.
    (Keras casts targets to float before `call`, so the shape, not the dtype, tells them apart.)
    """

    def call(self, y_true, y_pred):
        num_classes = y_pred.shape[-1]
        if len(y_true.shape) == len(y_pred.shape) - 1 or (y_true.shape[-1] == 1 and num_classes != 1):
            indices = ops.reshape(y_true, ops.shape(y_pred)[:-1])
            y_true = ops.one_hot(ops.cast(indices, "int32"), num_classes, dtype=y_pred.dtype)
        return super().call(y_true, y_pred)


def label_smoothing_loss(epsilon=0.1):
    """Label smoothing (paper section 5.2): cross-entropy on logits z against smoothed targets,

        q = y * (1 - epsilon) + epsilon / K,    loss = -sum_k q_k log softmax(z)_k

    with y one-hot, soft (mixup) or integer class indices (as timm's `LabelSmoothingCrossEntropy`).
    This is Keras' `CategoricalCrossentropy(from_logits=True, label_smoothing=epsilon)` with
    integer targets one-hot encoded first; see the module docstring for eps / K vs eps / (K - 1).

    With sample weights it is the weighted mean, so the weight-0 padding of a data-parallel
    validation batch does not dilute the loss; without them the plain batch mean.

    Args:
        epsilon: float in [0, 1). 0.1 in the paper; 0 gives the plain cross-entropy.
    """
    return LabelSmoothingCrossEntropy(
        from_logits=True, label_smoothing=epsilon, reduction="mean_with_sample_weight", name="cross_entropy"
    )


def classification_loss(label_smoothing=0.0):
    """The recipe's loss: `label_smoothing_loss(label_smoothing)` (plain cross-entropy at 0)."""
    return label_smoothing_loss(label_smoothing)


def distillation_loss(targets, student_logits, teacher_logits, temperature=20.0, label_smoothing=0.0):
    """The paper's distillation loss (section 5.3), averaged over the batch:
    CE(p, softmax(z)) + T^2 * CE(softmax(r / T), softmax(z / T)).

    Args:
        targets: p, one-hot or mixed targets (smoothed here when label_smoothing > 0).
        student_logits: z.
        teacher_logits: r.
        temperature: T.
        label_smoothing: epsilon applied to p.
    """
    student_logits = ops.cast(student_logits, "float32")
    teacher_logits = ops.stop_gradient(ops.cast(teacher_logits, "float32"))
    hard = keras.losses.categorical_crossentropy(
        targets, student_logits, from_logits=True, label_smoothing=label_smoothing
    )
    soft_targets = ops.softmax(teacher_logits / temperature, axis=-1)
    soft = keras.losses.categorical_crossentropy(soft_targets, student_logits / temperature, from_logits=True)
    return ops.mean(hard) + (temperature**2) * ops.mean(soft)
