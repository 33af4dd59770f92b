"""Generative adversarial networks: DCGAN generator and discriminator, the adversarial training step,
and a classifier ("judge") whose features score generated images.

The generator takes one float vector: noise, followed by a one-hot label when conditional. A
single array input keeps the exported generator easy to call from MLflow. Images are in [0, 1]
like the datasets; the generator's tanh output is rescaled to that range.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

from workbench.models.blocks import BN_MOMENTUM, weight_penalty

LEAKY_SLOPE = 0.2      # DCGAN's discriminator activation
JUDGE_FEATURES = 64    # width of the judge's penultimate layer, where Fréchet distances are measured
REAL_TARGET = 0.9      # one-sided label smoothing: a discriminator never quite sure keeps gradients useful


def build_generator(latent_dim: int, image_shape: tuple[int, int, int], num_classes: int, conditional: bool,
                    config) -> keras.Model:
    """Dense -> two (upsample x2, convolution) stages -> image; any side works (cropped to fit).

    Upsampling then convolving, rather than transposed convolutions, avoids checkerboard
    artefacts; on 8x8 digits it also escaped the initial mode collapse several epochs sooner."""
    height, width, channels = image_shape
    base_h, base_w = math.ceil(height / 4), math.ceil(width / 4)
    inputs = keras.Input(shape=(latent_dim + (num_classes if conditional else 0),),
                         name="noise_and_label" if conditional else "noise")
    x = layers.Dense(base_h * base_w * 128, use_bias=False)(inputs)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    x = layers.Activation(config.activation)(x)
    x = layers.Reshape((base_h, base_w, 128))(x)
    for filters in (128, 64):
        x = layers.UpSampling2D()(x)
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
        x = layers.Activation(config.activation)(x)
    x = layers.Conv2D(channels, 3, padding="same", activation="tanh", dtype="float32")(x)
    x = layers.Rescaling(0.5, offset=0.5, dtype="float32")(x)  # [-1, 1] -> the data's [0, 1]
    if (base_h * 4, base_w * 4) != (height, width):
        x = layers.CenterCrop(height, width, dtype="float32")(x)
    return keras.Model(inputs, x, name="generator")


def build_discriminator(image_shape: tuple[int, int, int], num_classes: int, conditional: bool,
                        config) -> keras.Model:
    """Strided convolutions with leaky ReLU -> one logit (real vs generated).

    Conditional: the one-hot label is repeated over the image as extra channels, so every
    filter sees which class the image claims to be, and joins the features again before the logit."""
    height, width, _ = image_shape
    image = keras.Input(shape=image_shape, name="image")
    inputs = [image]
    x = image
    if conditional:
        label = keras.Input(shape=(num_classes,), name="label")
        inputs.append(label)
        planes = layers.UpSampling2D(size=(height, width))(layers.Reshape((1, 1, num_classes))(label))
        x = layers.Concatenate()([image, planes])
    for filters in (64, 128):
        x = layers.Conv2D(filters, 4, strides=2, padding="same", kernel_regularizer=weight_penalty(config))(x)
        x = layers.LeakyReLU(LEAKY_SLOPE)(x)
        x = layers.Dropout(config.dropout)(x) if config.dropout else x
    x = MinibatchSpread()(x)
    x = layers.Flatten()(x)
    if conditional:
        x = layers.Concatenate()([x, label])
    logit = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(inputs, logit, name="discriminator")


class MinibatchSpread(layers.Layer):
    """Appends the batch's average feature spread as one more channel (ProGAN's minibatch standard
    deviation): a generator that makes every sample alike is then easy to tell from real data."""

    def call(self, x):
        spread = tf.reduce_mean(tf.math.reduce_std(tf.cast(x, tf.float32), axis=0))
        plane = tf.ones_like(x[..., :1]) * tf.cast(spread, x.dtype)
        return tf.concat([x, plane], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)


def build_judge(image_shape: tuple[int, int, int], num_classes: int, seed: int) -> keras.Model:
    """A small CNN classifier; its penultimate layer ('features') is where images are compared.

    Its initial weights follow `seed` alone, so every run on the same split gets the same judge
    and their scores can be compared."""
    init = lambda offset: keras.initializers.GlorotUniform(seed=seed + offset)  # noqa: E731
    inputs = keras.Input(shape=image_shape, name="image")
    x = inputs
    for i, filters in enumerate((32, 64)):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer=init(i))(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    features = layers.Dense(JUDGE_FEATURES, activation="relu", kernel_initializer=init(2), dtype="float32",
                            name="features")(x)
    probabilities = layers.Dense(num_classes, activation="softmax", kernel_initializer=init(3), dtype="float32",
                                 name="probabilities")(features)
    return keras.Model(inputs, probabilities, name="judge")


def judge_outputs(judge: keras.Model) -> keras.Model:
    """The same judge with two outputs: (features, class probabilities)."""
    return keras.Model(judge.inputs, [judge.get_layer("features").output, judge.output], name="judge_outputs")


class FrechetDistance(keras.metrics.Metric):
    """Fréchet distance between Gaussians fitted to real and generated feature vectors, accumulated
    over batches (sums and sums of outer products) so a whole validation pass gives one value.

    d = |m_r - m_g|^2 + tr(C_r + C_g - 2 (C_r C_g)^(1/2)); the trace of the square root is taken
    as sum(sqrt(eig(S C_g S))) with S = C_r^(1/2), which only needs symmetric eigendecompositions."""

    def __init__(self, dims: int, name: str = "frechet_distance", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dims = dims
        self.totals = {}
        for kind in ("real", "generated"):
            self.totals[kind] = (
                self.add_variable(shape=(), initializer="zeros", dtype="float64", name=f"{kind}_count"),
                self.add_variable(shape=(dims,), initializer="zeros", dtype="float64", name=f"{kind}_sum"),
                self.add_variable(shape=(dims, dims), initializer="zeros", dtype="float64", name=f"{kind}_outer"),
            )

    def update_state(self, real, generated):
        for kind, features in (("real", real), ("generated", generated)):
            features = tf.cast(features, tf.float64)
            count, total, outer = self.totals[kind]
            count.assign_add(tf.cast(tf.shape(features)[0], tf.float64))
            total.assign_add(tf.reduce_sum(features, axis=0))
            outer.assign_add(tf.matmul(features, features, transpose_a=True))

    def _gaussian(self, kind):
        count, total, outer = (v.value for v in self.totals[kind])
        mean = total / tf.maximum(count, 1.0)
        covariance = (outer - count * tf.tensordot(mean, mean, axes=0)) / tf.maximum(count - 1.0, 1.0)
        return mean, covariance

    def result(self):
        mean_r, cov_r = self._gaussian("real")
        mean_g, cov_g = self._gaussian("generated")
        values, vectors = tf.linalg.eigh(cov_r)
        root_r = vectors @ tf.linalg.diag(tf.sqrt(tf.maximum(values, 0.0))) @ tf.transpose(vectors)
        middle = tf.linalg.eigvalsh(root_r @ cov_g @ root_r)
        trace_root = tf.reduce_sum(tf.sqrt(tf.maximum(middle, 0.0)))
        distance = (tf.reduce_sum(tf.square(mean_r - mean_g)) + tf.linalg.trace(cov_r) + tf.linalg.trace(cov_g)
                    - 2.0 * trace_root)
        return tf.cast(distance, tf.float32)

    def reset_state(self):
        for variables in self.totals.values():
            for variable in variables:
                variable.assign(tf.zeros_like(variable))

    def get_config(self):
        return {**super().get_config(), "dims": self.dims}


class GAN(keras.Model):
    """Generator and discriminator trained against each other by a custom `train_step`.

    Batches are (images, one-hot labels). The discriminator learns real -> 1, generated -> 0;
    the generator learns to make the discriminator say 1 (the non-saturating loss). Both losses
    are reported as metrics, beside the judge's scores of the generated images: the Fréchet
    distance of its features to the real images of the same batches and, when conditional, how
    often it recognises the requested class (per epoch, on training and on validation data)."""

    def __init__(self, generator: keras.Model, discriminator: keras.Model, latent_dim: int, num_classes: int,
                 conditional: bool, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.conditional = conditional
        self.noise_seed = keras.random.SeedGenerator(seed)
        self.built = True  # both networks are built; the GAN itself has no weights of its own
        self.judge = None

    def compile(self, generator_optimizer, discriminator_optimizer, judge: keras.Model, jit_compile=False,
                steps_per_execution=1):
        super().compile(optimizer=None, jit_compile=jit_compile, steps_per_execution=steps_per_execution)
        if keras.config.dtype_policy().name == "mixed_float16":  # float16 gradients underflow without scaling
            generator_optimizer = keras.optimizers.LossScaleOptimizer(generator_optimizer)
            discriminator_optimizer = keras.optimizers.LossScaleOptimizer(discriminator_optimizer)
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        # Optimizer state exists before the first step, so a checkpoint can be restored into it.
        generator_optimizer.build(self.generator.trainable_variables)
        discriminator_optimizer.build(self.discriminator.trainable_variables)
        judge.trainable = False
        self.judge = judge_outputs(judge)
        self.bce = keras.losses.BinaryCrossentropy(from_logits=True)
        self.generator_loss = keras.metrics.Mean(name="generator_loss")
        self.discriminator_loss = keras.metrics.Mean(name="discriminator_loss")
        self.frechet_distance = FrechetDistance(self.judge.output[0].shape[-1])
        self.conditional_accuracy = keras.metrics.CategoricalAccuracy(name="conditional_accuracy")

    @property
    def metrics(self):
        tracked = [self.generator_loss, self.discriminator_loss, self.frechet_distance]
        return tracked + ([self.conditional_accuracy] if self.conditional else [])

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def generator_inputs(self, labels):
        """Fresh noise, followed by the one-hot labels when conditional."""
        noise = keras.random.normal((tf.shape(labels)[0], self.latent_dim), seed=self.noise_seed)
        return tf.concat([noise, tf.cast(labels, noise.dtype)], axis=1) if self.conditional else noise

    def _discriminate(self, images, labels, training):
        inputs = [images, labels] if self.conditional else images
        return tf.cast(self.discriminator(inputs, training=training), tf.float32)

    def _play(self, real_images, labels, training):
        generated = self.generator(self.generator_inputs(labels), training=training)
        real_logits = self._discriminate(real_images, labels, training)
        fake_logits = self._discriminate(generated, labels, training)
        discriminator_loss = (self.bce(REAL_TARGET * tf.ones_like(real_logits), real_logits)
                              + self.bce(tf.zeros_like(fake_logits), fake_logits))
        generator_loss = self.bce(tf.ones_like(fake_logits), fake_logits)
        return generated, generator_loss, discriminator_loss

    def _track(self, real_images, labels, generated, generator_loss, discriminator_loss):
        """Update every metric: both losses, and the judge's view of real and generated images."""
        self.generator_loss.update_state(generator_loss)
        self.discriminator_loss.update_state(discriminator_loss)
        features, probabilities = self.judge(tf.concat([real_images, tf.cast(generated, real_images.dtype)], 0),
                                             training=False)
        count = tf.shape(real_images)[0]
        self.frechet_distance.update_state(features[:count], features[count:])
        if self.conditional:
            self.conditional_accuracy.update_state(labels, probabilities[count:])
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        real_images, labels = data
        replicas = tf.distribute.get_strategy().num_replicas_in_sync  # gradients are summed over replicas
        with tf.GradientTape() as generator_tape, tf.GradientTape() as discriminator_tape:
            generated, generator_loss, discriminator_loss = self._play(real_images, labels, training=True)
            discriminator_total = discriminator_loss + sum(self.discriminator.losses, 0.0)  # l1/l2 penalties
            scaled_d = self.discriminator_optimizer.scale_loss(discriminator_total / replicas)
            scaled_g = self.generator_optimizer.scale_loss(generator_loss / replicas)
        discriminator_weights = self.discriminator.trainable_variables
        generator_weights = self.generator.trainable_variables
        self.discriminator_optimizer.apply_gradients(
            zip(discriminator_tape.gradient(scaled_d, discriminator_weights), discriminator_weights))
        self.generator_optimizer.apply_gradients(
            zip(generator_tape.gradient(scaled_g, generator_weights), generator_weights))
        return self._track(real_images, labels, generated, generator_loss, discriminator_loss)

    def test_step(self, data):
        real_images, labels = data
        return self._track(real_images, labels, *self._play(real_images, labels, training=False))
