"""TFRecord shards: one dataset as a set of files that many workers can read.

    from keras_cv_apps import data
    data.write_shards("dir:/data/photos", "/shared/photos-shards", shard_size=1000)
    splits = data.load("tfrecord:/shared/photos-shards/*.tfrecord", image_size=224, channels=3)

`write_shards` splits a dataset spec once (stratified, seeded, as `data.load` would) and writes
``<split>-<k>.tfrecord`` files plus ``shards.json`` (class names, the files of each split
with their record ranges, every label). Each record holds the encoded image (a folder's files
are copied byte for byte when the stream can decode them, anything else becomes a lossless PNG),
its label, its class name, its split, its index within the split and its source name. The split
travels with the records: ``tfrecord:GLOB`` reads it back instead of drawing a new one.
Under ``multiworker`` training each worker reads its own files (or, when a split has fewer files
than workers, its own records).
"""

from __future__ import annotations

import functools
import glob as globlib
import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from keras_cv_apps.data.streaming import FileStream, list_folder, sniff

logger = logging.getLogger(__name__)

INDEX = "shards.json"
SPLITS = ("train", "val", "test")
RECORD_SHUFFLE = 2048  # most encoded records a shuffle buffer holds (fewer when records are large)


def _features():
    import tensorflow as tf

    return {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64),
            "class_name": tf.io.FixedLenFeature([], tf.string), "split": tf.io.FixedLenFeature([], tf.string),
            "index": tf.io.FixedLenFeature([], tf.int64), "name": tf.io.FixedLenFeature([], tf.string, b"")}


def _example(image: bytes, label: int, class_name: str, split: str, index: int, name: str) -> bytes:
    import tensorflow as tf

    def b(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    def i(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))

    return tf.train.Example(features=tf.train.Features(feature={
        "image": b(image), "label": i(label), "class_name": b(class_name.encode()), "split": b(split.encode()),
        "index": i(index), "name": b(name.encode())})).SerializeToString()


# ------------------------------------------------------------------------------- writing


def write_shards(spec, out_dir, *, shard_size: int = 1000, image_size=None, channels: int = 3, seed: int = 0,
                 val_fraction: float = 0.1, test_fraction: float = 0.2, overwrite: bool = False,
                 **source_options) -> dict:
    """Write dataset ``spec`` as TFRecord shards of at most ``shard_size`` records per file into
    ``out_dir``, split as `data.load` splits it (same seed and fractions); returns the index
    written to ``out_dir/shards.json``.

    ``image_size`` None keeps each image as it is (a ``dir:`` folder's files are copied as they
    are); an int or (h, w) stores resized lossless PNGs (``channels`` 1 or 3), which makes the
    shards smaller and the reads cheaper. An existing set of shards in ``out_dir`` is replaced
    only with ``overwrite=True``.
    """
    from keras_cv_apps import artifacts
    from keras_cv_apps.data import sources, splitting

    if not isinstance(shard_size, (int, np.integer)) or shard_size < 1:
        raise ValueError(f"shard_size must be a positive integer; got {shard_size!r}.")
    size = splitting.image_size(image_size)
    out = Path(out_dir).expanduser()
    _prepare_out(out, overwrite)
    if isinstance(spec, str) and spec.startswith("dir:"):
        paths, labels, names, skipped, _ = list_folder(spec[4:], streamable_only=False)
        encode = _folder_encoder(paths, size, channels)
    else:
        if isinstance(spec, str) and spec.startswith("tfrecord:"):
            raise ValueError("The spec is already sharded; copy its files instead of writing them again.")
        data = sources.load_source(spec, image_size=size, channels=channels, seed=seed, **source_options)
        labels, names, skipped = data.labels, list(data.class_names), list(data.skipped)
        paths = [f"{spec if isinstance(spec, str) else 'arrays'}#{i}" for i in range(len(labels))]
        encode = _array_encoder(data.images)
    indices = splitting.stratified_split(labels, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
                                         class_names=names, min_classes=1)
    index = {"format": "keras_cv_apps.shards", "version": 1, "spec": spec if isinstance(spec, str) else "arrays",
             "class_names": names, "seed": seed, "val_fraction": val_fraction, "test_fraction": test_fraction,
             "image_size": list(size) if size else None, "splits": {}}
    for split in SPLITS:
        kept, files, chunk = [], [], []
        for position in indices[split]:
            encoded = encode(position)
            if encoded is None:
                skipped.append(str(paths[position]))
                continue
            chunk.append(_example(encoded, labels[position], names[labels[position]], split, len(kept),
                                  str(paths[position])))
            kept.append(int(labels[position]))
            if len(chunk) == shard_size:
                files.append(_write_file(out, split, len(files), chunk, len(kept) - len(chunk), artifacts))
                chunk = []
        if chunk or not files:
            files.append(_write_file(out, split, len(files), chunk, len(kept) - len(chunk), artifacts))
        index["splits"][split] = {"files": files, "labels": kept}
    index["skipped"] = skipped
    artifacts.write_json(out / INDEX, index, indent=None)
    logger.info("Wrote %s: %s records, %d skipped.", out, {s: len(v["labels"]) for s, v in index["splits"].items()},
                len(skipped))
    return index


def _prepare_out(out: Path, overwrite: bool) -> None:
    existing = sorted(out.glob("*.tfrecord")) + ([out / INDEX] if (out / INDEX).exists() else [])
    if existing and not overwrite:
        raise FileExistsError(f"{out} already holds shards; pass overwrite=True to replace them, or choose another "
                              "folder.")
    for path in existing:
        path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _write_file(out, split, k, chunk, start, artifacts) -> dict:
    import tensorflow as tf

    name = f"{split}-{k:05d}.tfrecord"
    with artifacts.atomic_path(out / name) as tmp:
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for record in chunk:
                writer.write(record)
    return {"name": name, "start": start, "count": len(chunk)}


def _png(image: np.ndarray) -> bytes:
    import cv2

    bgr = image if image.shape[-1] == 1 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    return cv2.imencode(".png", bgr)[1].tobytes()


def _array_encoder(images):
    return lambda i: _png(images[i])


def _folder_encoder(paths, size, channels):
    """Bytes of one folder file: as it is when the stream decodes it and no size is asked, else a
    PNG of `image.io` + `image.ops.fit`; None when the file cannot be read."""
    from keras_cv_apps.image.io import ImageReadError, read_image
    from keras_cv_apps.image.ops import fit

    def encode(i):
        path = Path(paths[i])
        try:
            data = path.read_bytes()
            if size is None and sniff(data[:16]):
                return data
            image = read_image(path, mode="gray" if channels == 1 else "rgb")
        except (ImageReadError, OSError):
            return None
        return _png(fit(image, size, channels))
    return encode


# ------------------------------------------------------------------------------- reading


class RecordStream(FileStream):
    """The records of ``tfrecord:`` shards, addressed by position (train, then val, then test)."""

    kind = "tfrecord"

    def __init__(self, splits: dict, size, channels, *, skipped=(), workers=None):
        self.splits = splits  # split -> [(path, start, count, nbytes)]
        self.offsets, self.sizes, n = {}, {}, 0
        for split in SPLITS:
            self.offsets[split] = n
            self.sizes[split] = sum(count for _, _, count, _ in splits.get(split, []))
            n += self.sizes[split]
        super().__init__(n, size, channels, skipped=skipped, workers=workers)

    def fingerprint(self) -> str:
        digest = hashlib.sha1()
        for split, files in sorted(self.splits.items()):
            for path, start, count, _ in files:
                stat = os.stat(path)
                digest.update(f"{split}\0{path}\0{start}\0{count}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()

    def _locate(self, position: int):
        split = next(s for s in reversed(SPLITS) if position >= self.offsets[s] and self.sizes[s])
        return split, position - self.offsets[split]

    def name(self, position: int) -> str:
        split, index = self._locate(position)
        for path, start, count, _ in self.splits[split]:
            if start <= index < start + count:
                return f"{path}#{index - start}"
        return f"{split}[{index}]"

    def _records(self, names, *, first, shard, keep):
        """``(position, encoded bytes)`` of the kept records in the files ``names`` yields."""
        import tensorflow as tf

        ds = names.interleave(tf.data.TFRecordDataset, cycle_length=4,
                              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.map(lambda record: _parse(record, first), num_parallel_calls=self._parallel())
        if shard is not None:
            ds = ds.filter(lambda pos, data: pos % shard[0] == shard[1])
        return ds.filter(lambda pos, data: tf.gather(keep, pos))

    def _encoded(self, positions, *, shuffle, seed, shard, passes):
        import tensorflow as tf

        keep = np.zeros(self.n, bool)
        keep[positions] = True
        keep_t = tf.constant(keep)
        streams = []
        for split in SPLITS:
            first, last = self.offsets[split], self.offsets[split] + self.sizes[split]
            wanted = keep[first:last]
            files = [f for f in self.splits.get(split, []) if wanted[f[1]:f[1] + f[2]].any()]
            if not files:
                continue
            per_record = sum(f[3] for f in files) / max(1, sum(f[2] for f in files))
            by_record = bool(shard) and len(files) < shard[0]
            if shard and not by_record:
                files = files[shard[1]::shard[0]]
            names = tf.data.Dataset.from_tensor_slices([f[0] for f in files])
            records = functools.partial(self._records, first=first, shard=shard if by_record else None,
                                        keep=keep_t)
            if not shuffle:
                streams.append(records(names).repeat(passes))
                continue
            buffer = int(max(16, min(RECORD_SHUFFLE, 64 * 2 ** 20 // max(per_record, 1))))
            shuffled = records(names.shuffle(len(files), seed=seed, reshuffle_each_iteration=True))
            shuffled = shuffled.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)  # within one pass
            # only the first pass is shuffled: why, in `FileStream.stream`
            streams.append(shuffled.concatenate(records(names).repeat(passes - 1)))
        ds = streams[0]
        for more in streams[1:]:
            ds = ds.concatenate(more)
        return ds


def _parse(record, first):
    import tensorflow as tf

    features = tf.io.parse_single_example(record, {k: v for k, v in _features().items()
                                                   if k in ("image", "index")})
    return first + features["index"], features["image"]


def open_records(pattern: str, *, size, channels: int, workers=None):
    """``tfrecord:GLOB`` -> ``(RecordStream, labels, class names, split indices)``.

    ``GLOB`` may also be the folder of the shards. The split written into the shards is used;
    ``shards.json`` beside the files gives the labels without reading the records (without it,
    the records are scanned once)."""
    path = Path(pattern).expanduser()
    files = sorted(str(p) for p in path.glob("*.tfrecord")) if path.is_dir() else \
        sorted(globlib.glob(str(path)))
    if not files:
        raise FileNotFoundError(f"tfrecord:{pattern} matches no files; write shards with "
                                "data.write_shards(spec, OUT_DIR) and use tfrecord:OUT_DIR/*.tfrecord.")
    index = _index_for(files)
    if index is None:
        index = _scan(files)
    names = list(index["class_names"])
    splits, labels, indices, offset = {}, [], {}, 0
    for split in SPLITS:
        entry = index["splits"].get(split, {"files": [], "labels": []})
        split_labels = np.asarray(entry["labels"], np.int32)
        chosen = [(f["path"], f["start"], f["count"], os.path.getsize(f["path"])) for f in entry["files"]
                  if f["path"] in files]
        splits[split] = chosen
        count = len(split_labels)
        labels.append(split_labels)
        mask = np.zeros(count, bool)
        for _, start, n, _ in chosen:
            mask[start:start + n] = True
        indices[split] = offset + np.flatnonzero(mask)
        offset += count
    if size is None:
        size = index.get("image_size")
        if not size:
            raise ValueError(f"tfrecord:{pattern} holds images of their original sizes; pass image_size.")
    stream = RecordStream(splits, size, channels, skipped=index.get("skipped", []), workers=workers)
    return stream, np.concatenate(labels), names, indices


def _index_for(files):
    """``shards.json`` of the folder holding ``files``, with absolute paths, if it lists them all."""
    from keras_cv_apps.artifacts import read_json

    folders = {str(Path(f).parent) for f in files}
    candidate = Path(next(iter(folders))) / INDEX
    if len(folders) != 1 or not candidate.exists():
        return None
    index = read_json(candidate)
    listed = set()
    for entry in index.get("splits", {}).values():
        for f in entry["files"]:
            f["path"] = str(candidate.parent / f["name"])
            listed.add(f["path"])
    if not set(files) <= listed:
        logger.warning("%s does not list every matched file; scanning the records instead.", candidate)
        return None
    return index


def _scan(files) -> dict:
    """Build the index by reading every record's label, class name, split and index once."""
    import tensorflow as tf

    wanted = {k: v for k, v in _features().items() if k != "image"}
    names, splits = {}, {s: {"files": [], "rows": []} for s in SPLITS}
    for path in files:
        rows = []
        for record in tf.data.TFRecordDataset(path).map(lambda r: tf.io.parse_single_example(r, wanted)):
            split = record["split"].numpy().decode()
            if split not in splits:
                raise ValueError(f"{path} is not a shard written by data.write_shards (split {split!r}).")
            names[int(record["label"])] = record["class_name"].numpy().decode()
            rows.append((split, int(record["index"]), int(record["label"])))
        if not rows:
            continue
        split = rows[0][0]
        splits[split]["files"].append({"path": path, "start": min(r[1] for r in rows), "count": len(rows)})
        splits[split]["rows"] += rows
    if not names:
        raise ValueError(f"The {len(files)} matched file(s) hold no records written by data.write_shards.")
    index = {"class_names": [names.get(i, str(i)) for i in range(max(names) + 1)], "splits": {}}
    for split, entry in splits.items():
        labels = np.zeros(max([r[1] for r in entry["rows"]], default=-1) + 1, np.int32)
        for _, i, label in entry["rows"]:
            labels[i] = label
        index["splits"][split] = {"files": entry["files"], "labels": labels.tolist()}
    return index
