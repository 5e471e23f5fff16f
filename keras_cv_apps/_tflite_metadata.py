"""TFLite model metadata for image classifiers, written and read without MediaPipe or tflite-support.

MediaPipe Tasks' ``ImageClassifier`` (and the older TFLite Task Library) read a model's labels and
input normalisation from a ``ModelMetadata`` flatbuffer (file identifier ``M001``; the public
``metadata_schema.fbs`` of MediaPipe / TFLite Support) that the model names in its own
``metadata`` list as ``TFLITE_METADATA``, stored in one of the model's buffers. Files the metadata
refers to (the labels) are appended to the ``.tflite`` file as an uncompressed zip archive. The
graph is untouched: the LiteRT interpreter runs the file as before.

Only the tables an image classifier needs are written here. Table slots follow the field order of
the schema; a union field takes two slots (its type, then its value).
"""

from __future__ import annotations

import io
import zipfile
from typing import Sequence

import flatbuffers
from flatbuffers import number_types as nt

METADATA_NAME = "TFLITE_METADATA"
FILE_IDENTIFIER = b"M001"
# Every field and enum value written here exists since schema 1.0.0 (the schema's history starts
# later additions at 1.0.1: VOCABULARY files, tokenizers, tensor groups, audio, file versions).
MIN_PARSER_VERSION = "1.0.0"

_RGB, _GRAYSCALE = 1, 2  # enum ColorSpaceType
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES = 1, 2  # union ContentProperties
_NORMALIZATION_OPTIONS = 1  # union ProcessUnitOptions
TENSOR_AXIS_LABELS = 2  # enum AssociatedFileType


# --------------------------------------------------------------------------------------------
# writing


def _strings(b, **fields) -> dict:
    return {k: b.CreateString(v) for k, v in fields.items() if v is not None}


def _offsets(b, items: Sequence[int]) -> int:
    b.StartVector(4, len(items), 4)
    for item in reversed(items):
        b.PrependUOffsetTRelative(item)
    return b.EndVector()


def _floats(b, values: Sequence[float]) -> int:
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependFloat32(float(v))
    return b.EndVector()


def _table(b, slots: dict, scalars: dict = ()) -> int:
    """A table from ``{slot: offset}`` (already built) and ``{slot: (prepend method, value)}``."""
    b.StartObject(1 + max([*slots, *dict(scalars), 0]))
    for slot, (method, value) in dict(scalars).items():
        getattr(b, method)(slot, value, 0)
    for slot, offset in slots.items():
        b.PrependUOffsetTRelativeSlot(slot, offset, 0)
    return b.EndObject()


def build_metadata(*, name: str, description: str, labels_file: str, num_classes: int, height: int, width: int,
                   channels: int, mean: Sequence[float], std: Sequence[float], input_name: str = "image",
                   output_name: str = "probability", version: str | None = None) -> bytes:
    """The ``ModelMetadata`` flatbuffer of a single-input image classifier with softmax scores."""
    b = flatbuffers.Builder(1024)
    # input tensor: image properties + normalisation
    size = _table(b, {}, {0: ("PrependUint32Slot", int(width)), 1: ("PrependUint32Slot", int(height))})
    image = _table(b, {1: size}, {0: ("PrependInt8Slot", _GRAYSCALE if channels == 1 else _RGB)})
    in_content = _table(b, {1: image}, {0: ("PrependUint8Slot", _IMAGE_PROPERTIES)})
    norm = _table(b, {0: _floats(b, mean), 1: _floats(b, std)})
    unit = _table(b, {1: norm}, {0: ("PrependUint8Slot", _NORMALIZATION_OPTIONS)})
    units = _offsets(b, [unit])
    s = _strings(b, name=input_name, description="Image pixels, normalised as (pixel - mean) / std.")
    tensor_in = _table(b, {0: s["name"], 1: s["description"], 3: in_content, 4: units})
    # output tensor: scores with the labels file along the class axis
    s = _strings(b, name=labels_file, description="One label per line, in class-index order.")
    labels = _table(b, {0: s["name"], 1: s["description"]}, {2: ("PrependInt8Slot", TENSOR_AXIS_LABELS)})
    features = _table(b, {})
    out_content = _table(b, {1: features}, {0: ("PrependUint8Slot", _FEATURE_PROPERTIES)})
    files = _offsets(b, [labels])
    s = _strings(b, name=output_name, description=f"Probabilities of the {num_classes} classes.")
    tensor_out = _table(b, {0: s["name"], 1: s["description"], 3: out_content, 6: files})
    subgraph = _table(b, {2: _offsets(b, [tensor_in]), 3: _offsets(b, [tensor_out])})
    s = _strings(b, name=name, description=description, version=version, min_version=MIN_PARSER_VERSION)
    root = {0: s["name"], 1: s["description"], 3: _offsets(b, [subgraph]), 7: s["min_version"]}
    if "version" in s:
        root[2] = s["version"]
    b.Finish(_table(b, root), file_identifier=FILE_IDENTIFIER)
    return bytes(b.Output())


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # older LiteRT wheels: TensorFlow ships the same generated module
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def _model_bytes(data: bytes) -> bytes:
    """The flatbuffer part of a ``.tflite`` file (an appended zip of associated files cut off)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            first = min((info.header_offset for info in archive.infolist()), default=len(data))
        return data[:first]
    except zipfile.BadZipFile:
        return data


def populate(model: bytes, metadata: bytes, files: dict) -> bytes:
    """``model`` with ``metadata`` stored as its ``TFLITE_METADATA`` buffer (replacing an earlier
    one) and ``files`` (``{name: bytes}``) appended as an uncompressed zip archive."""
    schema = _schema()
    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAs(_model_bytes(model), 0))
    import numpy as np

    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata, np.uint8)
    entry = next((m for m in tree.metadata or [] if _text(m.name) == METADATA_NAME), None)
    if entry is None:  # a new buffer; a second call reuses the first one's
        entry = schema.MetadataT()
        entry.name, entry.buffer = METADATA_NAME, len(tree.buffers)
        tree.buffers.append(buffer)
        tree.metadata = [*(tree.metadata or []), entry]
    else:
        tree.buffers[entry.buffer] = buffer
    b = flatbuffers.Builder(1024)
    b.Finish(tree.Pack(b), file_identifier=b"TFL3")
    out = io.BytesIO(bytes(b.Output()))
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:  # appended after the model
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def _text(value) -> str | None:
    return value.decode("utf-8") if isinstance(value, bytes) else value


# --------------------------------------------------------------------------------------------
# reading


class _Table:
    """Read access to one flatbuffer table by slot number."""

    def __init__(self, buf, pos):
        self.tab = flatbuffers.table.Table(buf, pos)

    def _offset(self, slot):
        return self.tab.Offset(4 + 2 * slot)

    def scalar(self, slot, flags, default=0):
        o = self._offset(slot)
        return self.tab.Get(flags, o + self.tab.Pos) if o else default

    def string(self, slot):
        o = self._offset(slot)
        return self.tab.String(o + self.tab.Pos).decode("utf-8") if o else None

    def table(self, slot):
        o = self._offset(slot)
        return _Table(self.tab.Bytes, self.tab.Indirect(o + self.tab.Pos)) if o else None

    def tables(self, slot):
        o = self._offset(slot)
        if not o:
            return []
        start = self.tab.Vector(o)
        return [_Table(self.tab.Bytes, self.tab.Indirect(start + 4 * i)) for i in range(self.tab.VectorLen(o))]

    def floats(self, slot):
        o = self._offset(slot)
        if not o:
            return []
        start = self.tab.Vector(o)
        return [self.tab.Get(nt.Float32Flags, start + 4 * i) for i in range(self.tab.VectorLen(o))]


def metadata_buffer(data: bytes) -> bytes | None:
    """The ``TFLITE_METADATA`` flatbuffer stored in a ``.tflite`` file's bytes, or None."""
    schema = _schema()
    model = schema.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if _text(entry.Name()) == METADATA_NAME:
            return bytes(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    return None


def read_metadata(data: bytes) -> dict | None:
    """What `build_metadata` wrote, read back from a ``.tflite`` file's bytes (None without metadata):
    ``name``, ``min_parser_version``, ``color_space``, ``size``, ``mean``, ``std``, ``labels_file``
    and ``labels`` (the lines of that file in the appended zip)."""
    meta = metadata_buffer(data)
    if meta is None:
        return None
    if not flatbuffers.util.BufferHasIdentifier(meta, 0, FILE_IDENTIFIER):
        raise ValueError("The TFLITE_METADATA buffer is not a ModelMetadata flatbuffer (identifier M001).")
    root = _Table(meta, flatbuffers.encode.Get(flatbuffers.packer.uoffset, meta, 0))
    subgraph = root.tables(3)[0]
    tensor_in, tensor_out = subgraph.tables(2)[0], subgraph.tables(3)[0]
    report = {"name": root.string(0), "min_parser_version": root.string(7), "color_space": None, "size": None,
              "mean": None, "std": None, "labels_file": None, "labels": None}
    content = tensor_in.table(3)
    if content and content.scalar(0, nt.Uint8Flags) == _IMAGE_PROPERTIES:
        image = content.table(1)
        report["color_space"] = {_RGB: "RGB", _GRAYSCALE: "GRAYSCALE"}.get(image.scalar(0, nt.Int8Flags), "UNKNOWN")
        size = image.table(1)
        if size:
            report["size"] = [size.scalar(1, nt.Uint32Flags), size.scalar(0, nt.Uint32Flags)]  # height, width
    for unit in tensor_in.tables(4):
        if unit.scalar(0, nt.Uint8Flags) == _NORMALIZATION_OPTIONS:
            norm = unit.table(1)
            report["mean"], report["std"] = norm.floats(0), norm.floats(1)
    for file in tensor_out.tables(6):
        if file.scalar(2, nt.Int8Flags) == TENSOR_AXIS_LABELS:
            report["labels_file"] = file.string(0)
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                report["labels"] = archive.read(report["labels_file"]).decode("utf-8").splitlines()
    return report
