"""Knowledge distillation as a `keras.Model` whose `compute_loss` is the paper's loss.

Keras 3.15 ships `keras.distillation.Distiller` with `LogitsDistillation`, but
it does not compute the paper's loss: it mixes the two terms as a convex
combination `w * student + (1 - w) * distill` (the paper adds them, unweighted;
w = 0.5 gives half the paper's loss, which with coupled L2 decay doubles the decay's
relative weight rather than only rescaling the rate) and its default term is KL(teacher || student) rather than the cross-entropy
(same gradient, but a different loss value by the teacher's entropy). It also
does not apply label smoothing to the hard term. So kresnet has this small model.
"""

import keras

from kresnet.tricks.losses import classification_loss, distillation_loss


class DistillationModel(keras.Model):
    """Knowledge distillation (paper section 5.3): trains `student` with a frozen `teacher` on

        loss = CE(p, softmax(z)) + T^2 * CE(softmax(r / T), softmax(z / T))

    z the student's logits, r the teacher's, p the true (smoothed, mixed) targets.

    The teacher sees the same (possibly mixup-blended) images as the student and runs in
    inference mode. Evaluation reports the student's cross-entropy alone (label-smoothed
    like its training targets), so validation losses compare with runs without a teacher.
    `compile` needs no loss: this model computes its own.

    Args:
        student: the model being trained (returns logits).
        teacher: a trained model with the same classes (returns logits); frozen here.
        temperature: T (20 in the paper).
        label_smoothing: epsilon applied to p.

    Example:
        model = DistillationModel(student, teacher, temperature=20.0, label_smoothing=0.1)
        model.compile(optimizer=NesterovL2SGD(...), metrics=["categorical_accuracy"])
        model.fit(train_ds, epochs=...)
    """

    def __init__(self, student, teacher, temperature=20.0, label_smoothing=0.0, **kwargs):
        super().__init__(**kwargs)
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.temperature = float(temperature)
        self.label_smoothing = float(label_smoothing)
        self._eval_loss = classification_loss(label_smoothing)
        self.built = student.built and teacher.built  # Both are built models; nothing is created lazily here.

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not training:
            return self._eval_loss(y, y_pred, sample_weight)
        teacher_logits = self.teacher(x, training=False)
        return distillation_loss(y, y_pred, teacher_logits, self.temperature, self.label_smoothing)
