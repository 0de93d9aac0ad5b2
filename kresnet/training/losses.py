"""Classification losses on logits with soft targets: label smoothing and the distillation term.

Label smoothing uses Keras' `label_smoothing`, i.e. targets y * (1 - eps) + eps / K,
which is what the paper's own code (GluonCV) trained with; the paper's text writes
eps / (K - 1) for the wrong classes, a difference of eps / (K (K - 1)) per class
(1e-7 for ImageNet) that we do not reproduce separately.
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


def classification_loss(label_smoothing=0.0):
    """Cross-entropy on float32 logits against soft (one-hot, mixed) targets, with label smoothing.

    With sample weights it is the weighted mean, so the weight-0 padding of a data-parallel
    validation batch does not dilute the loss; without them the plain batch mean.

    Args:
        label_smoothing: epsilon; 0 disables it.
    """
    return keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=label_smoothing, reduction="mean_with_sample_weight", name="cross_entropy"
    )


def distillation_loss(targets, student_logits, teacher_logits, temperature=20.0, label_smoothing=0.0):
    """The paper's distillation loss, averaged over the batch:
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
