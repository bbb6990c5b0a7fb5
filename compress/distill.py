"""Knowledge distillation for tf_keras classifiers (tf_keras has no distiller; Keras 3's names are kept).

The loss of a batch ``(x, y)`` is::

    student_loss_weight * CE(y, student(x))
        + (1 - student_loss_weight) * T**2 * KL(softmax(teacher_logits / T) || softmax(student_logits / T))

(Hinton et al. 2015; the keras.io "Knowledge Distillation" example). edgeship's
classifiers end in a softmax, so the logits are taken as ``log(probs)``: a
softmax of ``log(p) / T`` equals the softmax of ``logits / T``, the constant
offset cancels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from edgeship.core.tf import tf_modules

_EPS = 1e-7


@dataclass(frozen=True)
class Distillation:
    """How a fine-tuning step distils: ``temperature`` T and ``student_loss_weight`` (alpha, on the labels' CE)."""

    temperature: float = 3.0
    student_loss_weight: float = 0.5

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _log_probs(probs: Any, temperature: float) -> Any:
    tf, _ = tf_modules()
    logits = tf.math.log(tf.clip_by_value(tf.cast(probs, tf.float32), _EPS, 1.0))
    return tf.nn.log_softmax(logits / temperature, axis=-1)


def distillation_loss(y: Any, teacher_probs: Any, student_probs: Any, *, temperature: float = 3.0,
                      student_loss_weight: float = 0.5) -> Any:
    """The batch-mean distillation loss above, for integer labels ``y`` and softmax outputs."""
    tf, keras = tf_modules()
    ce = keras.losses.sparse_categorical_crossentropy(y, student_probs)
    log_t = _log_probs(teacher_probs, temperature)
    log_s = _log_probs(student_probs, temperature)
    kl = tf.reduce_sum(tf.exp(log_t) * (log_t - log_s), axis=-1)
    return tf.reduce_mean(student_loss_weight * ce + (1.0 - student_loss_weight) * temperature**2 * kl)


def distiller(teacher: Any, student: Any, *, temperature: float = 3.0, student_loss_weight: float = 0.5) -> Any:
    """A tf_keras model that trains ``student`` on :func:`distillation_loss` against a frozen ``teacher``.

    Compile it with an optimizer and ``metrics=["accuracy"]`` and ``fit`` it like the
    student (tfmot callbacks such as ``UpdatePruningStep`` find the student's
    wrappers); ``loss`` is ignored. Calling it runs the student. The teacher runs in
    inference mode and its weights never change.
    """
    if not 0.0 <= student_loss_weight <= 1.0:
        raise ValueError(f"student_loss_weight must be in [0, 1]. Received: {student_loss_weight}.")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0. Received: {temperature}.")
    tf, keras = tf_modules()

    class Distiller(keras.Model):
        def __init__(self) -> None:
            super().__init__(name="distiller")
            self.teacher = teacher
            self.student = student
            self.teacher.trainable = False
            self.loss_tracker = keras.metrics.Mean(name="loss")  # a running mean, as Keras reports its own loss

        def call(self, x: Any, training: Any = None) -> Any:
            return self.student(x, training=training)

        def _loss(self, x: Any, y: Any, training: bool) -> tuple[Any, Any]:
            probs = self.student(x, training=training)
            loss = distillation_loss(y, self.teacher(x, training=False), probs, temperature=temperature,
                                     student_loss_weight=student_loss_weight)
            return loss + tf.add_n(self.student.losses) if self.student.losses else loss, probs

        def train_step(self, data: Any) -> dict[str, Any]:
            x, y = data
            with tf.GradientTape() as tape:
                loss, probs = self._loss(x, y, training=True)
            variables = self.student.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return self._report(y, probs, loss)

        def test_step(self, data: Any) -> dict[str, Any]:
            x, y = data
            loss, probs = self._loss(x, y, training=False)
            return self._report(y, probs, loss)

        def _report(self, y: Any, probs: Any, loss: Any) -> dict[str, Any]:
            self.loss_tracker.update_state(loss)
            self.compiled_metrics.update_state(y, probs)
            return {m.name: m.result() for m in self.metrics}

    return Distiller()


def distill_from(teacher: Any, student: Any, distill: Distillation) -> Any:
    """A :func:`distiller` training ``student`` against a frozen copy of ``teacher``.

    The copy leaves the caller's teacher untouched (its ``trainable`` flag too), and
    keeps it apart from a student that shares layer objects with it (tfmot's wrapped
    clone, a rebuilt narrow model).
    """
    _, keras = tf_modules()
    copy = keras.models.clone_model(teacher)
    copy.set_weights(teacher.get_weights())
    return distiller(copy, student, temperature=distill.temperature, student_loss_weight=distill.student_loss_weight)

