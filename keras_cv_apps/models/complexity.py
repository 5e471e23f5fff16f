"""Count the multiply-accumulates (MACs) and parameters of any Keras model, layer by layer.

Keras has no FLOP counter, so `complexity(model)` measures one: it walks the model's graph with
concrete shapes (batch 1), traces every layer that can hold a matrix product in a
``tf.function``, and reads the multiplications off the TensorFlow ops of that trace. Layers it
does not know (custom layers, layers with sublayers, ``keras.ops`` nodes) are counted the same
way, so the count needs no table of layer types. Nested models are walked in full and their rows
are named ``outer_layer/inner_layer``; a layer called twice (a siamese branch) counts both calls.

Convention (one image, MACs = multiply-accumulates; FLOPs are about twice as many):

- convolution (1-3-D, grouped, transposed): output positions x kernel taps x input channels per
  group x output channels; a transposed convolution counts input positions instead;
- depthwise convolution: output positions x kernel taps x output channels;
- separable convolution: its depthwise part plus its 1x1 pointwise part;
- dense / matrix product / einsum: output elements x contracted size, so ``Dense`` on a
  ``(tokens, features)`` input counts every token;
- attention: the Q/K/V/O projections (dense) plus QKᵀ and AV (matrix products);
- bias, normalisation, activations, pooling, resizing, element-wise ops and softmax: 0.

``params`` equals ``model.count_params()``.

Worked example (4x4x3 input, 3x3 kernel, 2 outputs, ``valid`` padding, so a 2x2 output grid):

- standard convolution: 2x2 positions x 9 taps x 3 inputs x 2 outputs = **216**;
- depthwise separable: depthwise 2x2 x 9 x 3 = 108, pointwise 2x2 x 3 x 2 = 24, **132** in all;
- spatially separable, ``Conv2D(2, (3, 1))`` then ``Conv2D(2, (1, 3))``: the first pass shrinks
  only the height, so it runs on a 2x4 grid: 8 x 3 taps x 3 inputs x 2 outputs = 144; the second
  turns the 2x4x2 map into 2x2x2: 4 x 3 taps x 2 inputs x 2 outputs = 48, **192** in all.

Why some course notes give 72 for the spatially separable case: 72 = 2x2 positions x (3 + 3)
taps x 3 channels, i.e. both 1-D passes applied to each input channel on its own and both
evaluated only on the final 2x2 grid. That misses two things. The first pass must produce the
whole 2x4 intermediate map (its 1-D kernel cannot reduce the width), so it runs at 8 positions,
not 4; and a ``Conv2D`` pass mixes every input channel into every output channel. Applied per
channel, a 3x1 then 1x3 filter costs 8 x 3 x 3 + 4 x 3 x 3 = 108, and mixing into 2 outputs with a
1x1 convolution adds 24: 132, the depthwise separable figure again. As two ``Conv2D`` layers it
costs 192: each pass has 3 taps instead of 9, but on this tiny map the first pass runs at twice
the output's positions (on a large map the intermediate grid is barely larger than the output and
the pair costs about 2/k of the full k x k convolution). The counter reports what the layers
compute: 192.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

# Keras layer classes that never multiply two tensors: counted as 0 without tracing (speed only;
# any other layer is traced and a layer without matrix products also comes out 0).
_ZERO_LAYERS = (
    "InputLayer", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "BatchNormalization",
    "LayerNormalization", "GroupNormalization", "UnitNormalization", "Normalization", "Rescaling",
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Reshape", "Flatten",
    "Permute", "RepeatVector", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise",
    "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D", "Resizing",
    "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "Identity", "CenterCrop",
)


def _numel(shape) -> int:
    return int(math.prod(int(d) for d in shape))


def _einsum_macs(op) -> int:
    """Output elements x the product of the contracted index sizes (two-operand einsums)."""
    if len(op.inputs) != 2:
        return 0
    equation = op.get_attr("equation").decode().replace(" ", "")
    lhs, out = equation.split("->")
    sizes = {}
    for term, tensor in zip(lhs.split(","), op.inputs):
        dims = [int(d) for d in tensor.shape]
        head, _, tail = term.partition("...")
        named = dims[:len(head)] + (dims[len(dims) - len(tail):] if tail else [])
        for letter, size in zip(head + tail, named):
            sizes[letter] = size
    contracted = [sizes[c] for c in sizes if c not in out]
    return _numel(op.outputs[0].shape) * int(math.prod(contracted))


def _op_macs(op) -> int:
    """MACs of one TensorFlow op of a traced graph (0 for ops that do no products)."""
    kind = op.type
    if kind in ("Conv2D", "Conv3D"):
        kernel = op.inputs[1].shape  # (kh, kw, in per group, out)
        return _numel(op.outputs[0].shape) * _numel(kernel[:-1])
    if kind == "DepthwiseConv2dNative":
        kernel = op.inputs[1].shape  # (kh, kw, in, multiplier)
        return _numel(op.outputs[0].shape) * _numel(kernel[:-2])
    if kind in ("Conv2DBackpropInput", "Conv3DBackpropInputV2"):
        kernel = op.inputs[1].shape  # (kh, kw, out, in); input positions x taps x outputs
        return _numel(op.inputs[2].shape) * _numel(kernel[:-1])
    if kind == "MatMul":
        a = op.inputs[0].shape
        return _numel(op.outputs[0].shape) * int(a[0] if op.get_attr("transpose_a") else a[1])
    if kind in ("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
        a = op.inputs[0].shape
        return _numel(op.outputs[0].shape) * int(a[-2] if op.get_attr("adj_x") else a[-1])
    if kind in ("Einsum", "XlaEinsum"):
        return _einsum_macs(op)
    return 0


def _function_graph(graph, op, attr: str):
    return graph._get_function(op.get_attr(attr).name).graph


def _ops_macs(graph) -> int:
    """MACs of every op of ``graph``, inside called functions too (Keras runs a grouped
    convolution as an XLA-compiled function call; of an ``If``, the costlier branch counts)."""
    total = 0
    for op in graph.get_operations():
        total += _op_macs(op)
        if op.type in ("PartitionedCall", "StatefulPartitionedCall"):
            total += _ops_macs(_function_graph(graph, op, "f"))
        elif op.type in ("If", "StatelessIf"):
            total += max(_ops_macs(_function_graph(graph, op, a)) for a in ("then_branch", "else_branch"))
    return total


def _graph_macs(fn: Callable, specs) -> tuple:
    """Trace ``fn(*specs)`` in a ``tf.function``; return (MACs, structured symbolic outputs)."""
    import tensorflow as tf

    concrete = tf.function(fn, autograph=False).get_concrete_function(*specs)
    return _ops_macs(concrete.graph), concrete.structured_outputs


def _spec_tree(structure):
    """KerasTensors of a structure -> tf.TensorSpecs (same structure); other leaves kept."""
    import keras
    import tensorflow as tf

    return keras.tree.map_structure(
        lambda t: tf.TensorSpec(t.shape, t.dtype) if isinstance(t, keras.KerasTensor) else t, structure)


def _as_keras_tensors(structure):
    import keras

    return keras.tree.map_structure(
        lambda t: keras.KerasTensor(tuple(t.shape), dtype=t.dtype.name) if hasattr(t, "shape") else t, structure)


class _Counter:
    """Walks a model and accumulates one row per layer (MACs summed over every call)."""

    def __init__(self):
        self.rows = {}  # path -> row
        self.seen_params = set()

    def row(self, path: str, op) -> dict:
        import keras

        if path not in self.rows:
            params = 0
            if isinstance(op, keras.layers.Layer) and id(op) not in self.seen_params:
                self.seen_params.add(id(op))
                params = int(op.count_params()) if op.built else 0
            self.rows[path] = {"name": path, "type": type(op).__name__, "macs": 0, "params": params}
        return self.rows[path]

    def walk_functional(self, model, inputs, prefix: str):
        """Run ``model``'s graph on KerasTensors with concrete shapes, counting every node."""
        return model._run_through_graph(inputs, operation_fn=lambda op: self.node_fn(op, prefix))

    def node_fn(self, op, prefix: str) -> Callable:
        import keras

        path = f"{prefix}{op.name}"

        def run(*args, **kwargs):
            nested = _functional_of(op)
            if nested is not None and _all_defined(args):
                return self.walk_functional(nested, args[0], f"{path}/")  # one row per inner layer
            row = self.row(path, op)
            if type(op).__name__ in _ZERO_LAYERS and type(op).__module__.startswith("keras."):
                return op.compute_output_spec(*args, **kwargs)
            specs, static = _split(args, kwargs)

            def fn(*tensors):
                a, k = _merge(static, tensors)
                return op(*a, **k)

            macs, outputs = _graph_macs(fn, specs)
            row["macs"] += int(macs)
            if isinstance(op, keras.Model):  # a model counted as one row: its layers' params too
                self.seen_params.update(id(layer) for layer in _all_layers(op))
            return _as_keras_tensors(outputs)

        return run


def _functional_of(op):
    """The functional graph of a nested model (a built Sequential's too), else None."""
    import keras

    if isinstance(op, keras.Sequential):
        return getattr(op, "_functional", None)
    if isinstance(op, keras.Model) and hasattr(op, "_run_through_graph") and hasattr(op, "_nodes_by_depth"):
        return op
    return None


def _all_layers(model):
    out = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        out.extend(_all_layers(layer))
    return out


def _all_defined(args) -> bool:
    import keras

    return all(all(d is not None for d in t.shape) for t in keras.tree.flatten(args)
               if isinstance(t, keras.KerasTensor))


def _split(args, kwargs):
    """(TensorSpecs of the KerasTensors in args/kwargs, a template to put tensors back into)."""
    import keras

    flat = keras.tree.flatten((args, kwargs))
    specs = [_spec_tree(t) for t in flat if isinstance(t, keras.KerasTensor)]
    return specs, (args, kwargs, flat)


def _merge(static, tensors):
    import keras

    args, kwargs, flat = static
    it = iter(tensors)
    filled = [next(it) if isinstance(t, keras.KerasTensor) else t for t in flat]
    return keras.tree.pack_sequence_as((args, kwargs), filled)


def _input_tensors(model, input_shape):
    """KerasTensors with batch 1 for the model's inputs (``input_shape`` fills unknown sizes)."""
    import keras

    known = [tuple(t.shape[1:]) for t in getattr(model, "inputs", None) or []]
    if input_shape is not None:
        given = [input_shape] if not isinstance(input_shape[0], (tuple, list)) else list(input_shape)
        given = [tuple(int(d) for d in s) for s in given]
        if known and len(given) != len(known):
            raise ValueError(f"input_shape gives {len(given)} shape(s); {model.name} has {len(known)} input(s).")
        known = given
    if not known:
        raise ValueError(f"{model.name} has no recorded input shape; pass input_shape=(height, width, channels).")
    if any(d is None for s in known for d in s):
        raise ValueError(f"{model.name} takes inputs of unknown size {known}; pass input_shape= the size to count "
                         "at, e.g. input_shape=(224, 224, 3).")
    dtypes = [t.dtype for t in getattr(model, "inputs", None) or []] or ["float32"] * len(known)
    return [keras.KerasTensor((1, *s), dtype=d) for s, d in zip(known, dtypes)]


def complexity(model, *, input_shape: Optional[tuple] = None) -> dict:
    """MACs and parameters of ``model`` for one image, in total and per layer.

    Args:
        model: any built Keras model: functional, sequential, a subclass of either, a model
            nested in another, or a subclassed model (counted as one row).
        input_shape: ``(H, W, C)`` (or a list, one per input) to count at when the model's
            inputs have unknown sizes; by default the model's own input shapes.

    Returns:
        ``{"macs": int, "params": int, "layers": [{"name", "type", "macs", "params"}, ...]}``
        with rows in graph order, summing to the totals (see the module docstring for the
        convention).
    """
    import keras

    if not isinstance(model, keras.Model):
        raise ValueError(f"complexity() takes a keras.Model, got {type(model).__name__}.")
    inputs = _input_tensors(model, input_shape)
    counter = _Counter()
    functional = _functional_of(model)
    if functional is not None:
        structure = inputs if len(inputs) > 1 else inputs[0]
        counter.walk_functional(functional, structure, "")
    else:
        counter.node_fn(model, "")(inputs if len(inputs) > 1 else inputs[0])
    rows = list(counter.rows.values())
    params = int(model.count_params())
    rest = params - sum(r["params"] for r in rows)
    if rest:  # weights the model holds itself, outside any layer
        rows.append({"name": f"{model.name} (own weights)", "type": type(model).__name__, "macs": 0, "params": rest})
    return {"macs": int(sum(r["macs"] for r in rows)), "params": params, "layers": rows}


def _human(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def complexity_table(model_or_report, *, input_shape: Optional[tuple] = None, skip_zero: bool = False) -> str:
    """The per-layer table of `complexity` as text: one row per Keras layer (named by its Keras
    name, ``outer/inner`` inside nested models), MACs, share of the total and parameters, and a
    total row equal to the sums. ``skip_zero`` leaves out rows with neither MACs nor parameters
    (the totals still count everything)."""
    report = model_or_report if isinstance(model_or_report, dict) else complexity(model_or_report,
                                                                                   input_shape=input_shape)
    rows = [r for r in report["layers"] if not skip_zero or r["macs"] or r["params"]]
    width = max([len("layer")] + [len(r["name"]) for r in rows])
    kind = max([len("type")] + [len(r["type"]) for r in rows])
    total = max(report["macs"], 1)
    lines = [f"{'layer':<{width}}  {'type':<{kind}}  {'MACs':>14}  {'share':>6}  {'params':>12}"]
    lines.append("-" * len(lines[0]))
    for r in rows:
        lines.append(f"{r['name']:<{width}}  {r['type']:<{kind}}  {r['macs']:>14,}  "
                     f"{100 * r['macs'] / total:>5.1f}%  {r['params']:>12,}")
    lines.append("-" * len(lines[0]))
    lines.append(f"{'total':<{width}}  {'':<{kind}}  {report['macs']:>14,}  {'100.0%':>6}  {report['params']:>12,}")
    lines.append(f"= {_human(report['macs'])} MACs, {_human(report['params'])} parameters")
    return "\n".join(lines)


def print_complexity(model, *, input_shape: Optional[tuple] = None, skip_zero: bool = True,
                     print_fn: Callable = print) -> dict:
    """Print `complexity_table` (like ``model.summary()``, through ``print_fn``) and return the
    report."""
    report = complexity(model, input_shape=input_shape)
    print_fn(complexity_table(report, skip_zero=skip_zero))
    return report
