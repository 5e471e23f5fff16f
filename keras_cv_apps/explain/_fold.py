"""Inference-time fusion for the TensorFlow backend: ``Conv2D -> BatchNormalization -> ReLU``
chains become one convolution with folded weights, a bias and a ReLU, which oneDNN runs as one
fused kernel and whose backward pass skips the normalisation.

`fused_plan(graph, nodes, keep)` maps a chain's nodes to replacements: the convolution's node to
the fused function, the normalisation's and activation's nodes to a pass-through. A chain is
fused only when each link's output feeds the next link alone and none of them is wanted on its
own (``keep``: layers whose outputs are captured). The folded weights are read once, when the
plan is made: use it for frozen models (DeepDream), not while training.

A fused stride-1 convolution also computes its input gradient as a forward convolution (the
kernel flipped in space, its channel axes swapped, the padding mirrored), which oneDNN runs a
little faster than TensorFlow's ``Conv2DBackpropInput``; only the input is differentiated.
"""

from __future__ import annotations

import re

import keras
import numpy as np


def _consumers(graph, nodes) -> dict:
    out = {}
    for node in nodes:
        for t in node.input_tensors:
            out.setdefault(id(t), []).append(node)
    return out


def _only_consumer(node, consumers, outputs):
    tensors = node.outputs
    if len(tensors) != 1 or any(t is o for o in outputs for t in tensors):
        return None
    users = consumers.get(id(tensors[0]), [])
    return users[0] if len(users) == 1 else None


def _is_relu(op) -> bool:
    if isinstance(op, keras.layers.ReLU):
        return not op.max_value and not op.negative_slope and not op.threshold
    return isinstance(op, keras.layers.Activation) and getattr(op.activation, "__name__", "") == "relu"


def _conv_ok(op) -> bool:
    return (type(op) is keras.layers.Conv2D and op.data_format == "channels_last" and op.groups == 1
            and getattr(op.activation, "__name__", "") == "linear")


def _pass(x, *args, **kwargs):
    return x


def fused_plan(graph, nodes, keep) -> dict:
    """``{id(node): replacement callable}`` for the fusable chains of ``graph``."""
    import tensorflow as tf

    consumers = _consumers(graph, nodes)
    plan = {}
    for node in nodes:
        conv = node.operation
        if not _conv_ok(conv) or id(conv) in keep:
            continue
        bn_node = _only_consumer(node, consumers, graph.outputs)
        bn = bn_node.operation if bn_node is not None else None
        if not isinstance(bn, keras.layers.BatchNormalization) or bn.axis not in (-1, 3) or id(bn) in keep:
            bn_node = None
        kernel = keras.ops.convert_to_numpy(conv.kernel)
        bias = keras.ops.convert_to_numpy(conv.bias) if conv.use_bias else np.zeros(kernel.shape[-1], np.float32)
        if bn_node is not None:
            gamma = keras.ops.convert_to_numpy(bn.gamma) if bn.scale else 1.0
            beta = keras.ops.convert_to_numpy(bn.beta) if bn.center else 0.0
            inv = gamma / np.sqrt(keras.ops.convert_to_numpy(bn.moving_variance) + bn.epsilon)
            kernel, bias = kernel * inv, (bias - keras.ops.convert_to_numpy(bn.moving_mean)) * inv + beta
        last = bn_node or node
        act_node = _only_consumer(last, consumers, graph.outputs)
        relu = act_node is not None and _is_relu(act_node.operation)
        if bn_node is None and not relu:
            continue
        plan[id(node)] = _fused(tf, conv, tf.constant(kernel, tf.float32), tf.constant(bias, tf.float32), relu)
        for extra in (bn_node, act_node if relu else None):
            if extra is not None:
                plan[id(extra)] = _pass
    return plan


def _fused(tf, conv, kernel, bias, relu):
    strides = (1, *conv.strides, 1)
    dilations = (1, *conv.dilation_rate, 1)
    padding = conv.padding.upper()
    scope = re.sub(r"[^A-Za-z0-9_.-]", "_", conv.name)  # the layer's name as a valid TensorFlow name scope
    scope = scope if re.match(r"[A-Za-z0-9.]", scope) else "conv" + scope

    def plain(x):
        y = tf.nn.bias_add(tf.nn.conv2d(x, kernel, strides, padding, dilations=dilations), bias)
        return tf.nn.relu(y) if relu else y

    step = plain if not FORWARD_GRADIENT or strides != (1, 1, 1, 1) or dilations != (1, 1, 1, 1) else \
        _with_forward_gradient(tf, plain, kernel, padding, relu, scope)

    def call(x, *args, **kwargs):
        with tf.name_scope(scope):  # on the ops and their gradients, so profiles name the layer
            return step(x)

    return call


FORWARD_GRADIENT = True  # stride-1 convolutions' input gradient as a forward convolution (benchmarks switch it)


def _with_forward_gradient(tf, plain, kernel, padding, relu, scope):
    """``plain`` (a stride-1 convolution, its bias and ReLU) whose input gradient is computed as a
    forward convolution of the output gradient with the kernel flipped in space and its channels
    swapped, padded to undo the forward padding (only the input is differentiated, never the
    weights). Its ops are named ``<scope>/input_gradient/...``."""
    kh, kw = int(kernel.shape[0]), int(kernel.shape[1])
    flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
    if padding == "VALID":
        pads = [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]]
    else:  # SAME puts (k - 1) // 2 before and the rest after; the gradient's padding is mirrored
        pads = [[0, 0], [kh // 2, (kh - 1) // 2], [kw // 2, (kw - 1) // 2], [0, 0]]
    same = padding == "SAME" and kh % 2 == 1 and kw % 2 == 1  # mirrored = symmetric: SAME itself

    @tf.custom_gradient
    def step(x):
        y = plain(x)

        def grad(dy):
            with tf.name_scope(f"{scope}/input_gradient/"):
                if relu:
                    dy = tf.raw_ops.ReluGrad(gradients=dy, features=y)
                if same:
                    return tf.nn.conv2d(dy, flipped, 1, "SAME")
                return tf.nn.conv2d(tf.pad(dy, pads), flipped, 1, "VALID")

        return y, grad

    return step
