"""Running a Keras model layer by layer: class scores before the softmax, the outputs of named
layers (also inside nested models), and only the part of the graph they need.

Explanations need what a plain ``model(x)`` call does not give: the output of an inner layer on
the same forward pass as the class scores (Grad-CAM differentiates the score with respect to it),
and the score before a final softmax (a softmax output saturates, so its gradient vanishes for
confident predictions). `GraphRunner` walks the model's own layer graph and calls each layer as
the model would, with ``training=False``; a nested model that holds a wanted layer, or that ends
the model, is walked the same way. Layers that nothing asked for are not run, so a feature map of
a fixed-size classifier can be computed on a larger image. Nothing of the user's model changes:
the final softmax is dropped by calling a shallow view of that layer whose activation is linear,
so the view still reads the model's own variables.
"""

from __future__ import annotations

import copy
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import keras


def graph_of(model):
    """The functional graph of ``model``: the model itself, or a Sequential's inner graph."""
    if isinstance(model, keras.Sequential):
        graph = getattr(model, "_functional", None)
        if graph is None:
            raise ValueError(f"Sequential model {model.name!r} has not been built yet; call it once on a batch of "
                             "images (or start it with keras.Input) first.")
        return graph
    if isinstance(model, keras.Model) and hasattr(model, "_nodes_by_depth"):
        return model
    name = getattr(model, "name", type(model).__name__)
    raise ValueError(f"Cannot look inside {name!r} ({type(model).__name__}): explanations need a Functional or "
                     "Sequential Keras model, whose layer graph can be walked.")


def _walkable(op) -> bool:
    if not isinstance(op, keras.Model):
        return False
    try:
        graph_of(op)
    except ValueError:
        return False
    return True


def _nodes(graph) -> list:
    """The graph's call nodes in execution order (inputs first)."""
    return [node for depth in sorted(graph._nodes_by_depth, reverse=True) for node in graph._nodes_by_depth[depth]
            if node.operation is not None and not node.is_input]


def iter_layers(model) -> Iterator[Tuple[object, tuple]]:
    """``(layer, output shape)`` for every layer call of ``model`` and of the models nested in it,
    in execution order (a nested model's own layers stand in for it)."""
    for node in _nodes(graph_of(model)):
        if _walkable(node.operation):
            yield from iter_layers(node.operation)
        else:
            yield node.operation, tuple(node.outputs[0].shape) if node.outputs else ()


def input_shape(model) -> tuple:
    """The shape of the model's one input, ``(None, H, W, C)`` with None where any size goes."""
    inputs = graph_of(model).inputs
    if len(inputs) != 1:
        raise ValueError(f"{model.name} takes {len(inputs)} inputs; explanations need a model with one image input.")
    return tuple(inputs[0].shape)


def feature_maps(model) -> List[Tuple[str, tuple]]:
    """``(name, shape)`` of every layer with a 4-D output whose spatial size is not 1x1."""
    found = {}
    for layer, shape in iter_layers(model):
        if len(shape) == 4 and not (shape[1] == 1 and shape[2] == 1):
            found.pop(layer.name, None)
            found[layer.name] = shape
    return list(found.items())


def find(model, name: str):
    """The layer called ``name`` in ``model`` or in a model nested inside it."""
    for layer, _ in iter_layers(model):
        if layer.name == name:
            return layer
    names = [layer.name for layer, _ in iter_layers(model)]
    shown = ", ".join(map(repr, names[-12:]))
    more = f" (and {len(names) - 12} before them)" if len(names) > 12 else ""
    raise ValueError(f"{model.name} has no layer {name!r}; its layers include {shown}{more}.")


def _holds(model, ids) -> bool:
    return any(id(layer) in ids for layer, _ in iter_layers(model))


def _is_softmax(fn) -> bool:
    return fn is keras.activations.softmax or getattr(fn, "__name__", None) == "softmax"


def ends_in_softmax(model) -> bool:
    """Whether the model's (first) output comes out of a softmax."""
    graph = graph_of(model)
    op = graph.outputs[0]._keras_history.operation
    if _walkable(op):
        return ends_in_softmax(op)
    return isinstance(op, keras.layers.Softmax) or _is_softmax(getattr(op, "activation", None))


def _without_softmax(layer) -> Callable:
    """The layer's computation up to (not including) its softmax; other layers unchanged."""
    if isinstance(layer, keras.layers.Softmax):
        return lambda inputs, *args, **kwargs: inputs
    if _is_softmax(getattr(layer, "activation", None)):
        view = copy.copy(layer)  # shares the layer's variables; only the view's activation differs
        object.__setattr__(view, "activation", keras.activations.linear)
        return view
    return layer


def _call(op, args, kwargs):
    if "training" in getattr(op, "_call_context_args", ()):
        kwargs = {**kwargs, "training": False}
    return op(*args, **kwargs)


def _compile(model, ids: Dict[int, str], want_output: bool, strip: bool, fuse: bool = False) -> Callable:
    """A function ``run(inputs, captured, hook)`` computing what ``model`` must for its first output
    (if ``want_output``; without its softmax if ``strip``) and for the layers in ``ids``."""
    graph = graph_of(model)
    output = graph.outputs[0]
    fused = {}
    if fuse:
        from keras_cv_apps.explain._fold import fused_plan

        fused = fused_plan(graph, _nodes(graph), ids)
    needed = {id(output)} if want_output else set()
    plan = []
    for node in reversed(_nodes(graph)):
        op = node.operation
        holds = _walkable(op) and _holds(op, ids)
        outputs_needed = any(id(t) in needed for t in node.outputs)
        if not (outputs_needed or id(op) in ids or holds):
            continue
        final = strip and want_output and any(t is output for t in node.outputs)
        if _walkable(op) and (holds or final):
            plan.append((node, _compile(op, ids, outputs_needed, final, fuse), True, None))
        else:
            fn = fused.get(id(node), _without_softmax(op) if final else op)
            plan.append((node, fn, False, ids.get(id(op))))
        needed.update(id(t) for t in node.input_tensors)
    plan.reverse()

    def run(values, captured, hook):
        tensors = {id(t): v for t, v in zip(graph.inputs, values)}
        for node, fn, nested, name in plan:
            args, kwargs = node.arguments.fill_in(tensors)
            if nested:
                out = fn(keras.tree.flatten(args), captured, hook)
            else:
                out = _call(fn, args, kwargs)
                if name is not None:
                    out = hook(name, out) if hook is not None else out
                    captured[name] = out
            if out is not None:
                for t, v in zip(node.outputs, keras.tree.flatten(out)):
                    tensors[id(t)] = v
        return [tensors[id(output)]] if want_output else None

    return run


class GraphRunner:
    """``runner(x, hook=None) -> (scores, {layer name: output})`` for a batch ``x``.

    Args:
        model: a Functional or Sequential model with one input (nested models are walked).
        capture: names of layers whose outputs are returned (searched inside nested models).
        scores: compute the model's first output, without a final softmax; else only the
            captured layers (and what they need) run, and ``scores`` is None.

    ``hook(name, tensor) -> tensor``, when given, sees each captured output as soon as it is
    computed and returns the tensor the rest of the model continues with (a gradient tape watches
    it there; a zero perturbation can be added there). ``fuse`` runs convolution, batch-norm and
    ReLU chains as one fused TensorFlow convolution with the weights read now (`_fold`).
    """

    def __init__(self, model, *, capture: Sequence[str] = (), scores: bool = True, fuse: bool = False):
        input_shape(model)
        self.model = model
        self.capture = tuple(capture)
        layers = {name: find(model, name) for name in self.capture}
        self._run = _compile(model, {id(layer): name for name, layer in layers.items()}, scores, scores, fuse)
        self.scores = scores

    def __call__(self, x, hook: Optional[Callable] = None):
        captured: dict = {}
        out = self._run([x], captured, hook)
        missing = [name for name in self.capture if name not in captured]
        if missing:
            raise ValueError(f"Layer(s) {missing} of {self.model.name} are not on the path from its input.")
        return (out[0] if out is not None else None), captured
