"""Learning from the volunteers' votes (issue 20): the Dirichlet-multinomial likelihood of the six
t11 vote counts and the head that predicts them, after Zoobot (Walmsley et al. 2022).

The head maps its logits x to concentrations alpha = 1 + 100 * sigmoid(x) (Zoobot's choice:
alpha in [1, 101], so the loss stays finite whatever the logits). The loss is the negative
log-likelihood of the counts k (total N) under a Dirichlet-multinomial, written in closed form
with `lgamma` (no TensorFlow Probability needed):

    log p(k | alpha) = lgamma(N + 1) - sum_i lgamma(k_i + 1)
                       + lgamma(A) - lgamma(N + A) + sum_i [lgamma(k_i + alpha_i) - lgamma(alpha_i)]

with A = sum_i alpha_i. A galaxy with no votes has log p = 0 exactly (every term cancels), so it
contributes nothing, gradient included. The prediction is the expected vote fraction
alpha_i / A (`ExpectedVoteFraction`), whose argmax is the predicted class: a saved votes model
outputs fractions that sum to one, like a softmax, and every metric, figure, XAI method and
`spiralarms predict` reads it unchanged.
"""

import keras
import tensorflow as tf

CONCENTRATION_FLOOR = 1.0
CONCENTRATION_SCALE = 100.0


def dirichlet_multinomial_nll(counts, concentrations):
    """Per galaxy: -log p(counts | concentrations), shape (batch,). Both (batch, answers)."""
    counts = tf.cast(counts, tf.float32)
    alpha = tf.cast(concentrations, tf.float32)
    total = tf.reduce_sum(counts, axis=-1)
    strength = tf.reduce_sum(alpha, axis=-1)
    log_p = (tf.math.lgamma(total + 1.0) - tf.reduce_sum(tf.math.lgamma(counts + 1.0), axis=-1)
             + tf.math.lgamma(strength) - tf.math.lgamma(total + strength)
             + tf.reduce_sum(tf.math.lgamma(counts + alpha) - tf.math.lgamma(alpha), axis=-1))
    return -log_p


@keras.saving.register_keras_serializable(package="spiralarms")
def dirichlet_multinomial_loss(y_true, y_pred):
    """Keras loss: y_true the vote counts, y_pred the head's concentrations."""
    return dirichlet_multinomial_nll(y_true, y_pred)


def concentrations(logits):
    """Zoobot's head: alpha = 1 + 100 * sigmoid(logits), from standard layers (float32)."""
    x = keras.layers.Activation("sigmoid", dtype="float32", name="vote_sigmoid")(logits)
    return keras.layers.Rescaling(CONCENTRATION_SCALE, offset=CONCENTRATION_FLOOR,
                                  dtype="float32", name="vote_concentration")(x)


@keras.saving.register_keras_serializable(package="spiralarms")
class ExpectedVoteFraction(keras.layers.Layer):
    """alpha -> alpha / sum(alpha): the expected vote fraction of each answer."""

    def call(self, alpha):
        return alpha / keras.ops.sum(alpha, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return input_shape
