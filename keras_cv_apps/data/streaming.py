"""Streamed images: files stay on disk until a parallel ``tf.data`` map decodes them.

`dir:PATH` (a folder per class) and `tfrecord:GLOB` (shards from `data.write_shards`) are
streamed: `data.load` lists them (names, labels, a cheap look at each file's first bytes), splits
the list, and every pipeline decodes and resizes inside ``tf.data`` with
``num_parallel_calls=AUTOTUNE``, so memory holds a few batches, never the decoded dataset. An
optional on-disk cache (``data.load(..., cache=FOLDER)``) keeps the decoded, resized images of
each split for later epochs and runs.

Pixel contract: `decode_image` gives what `image.io.read_image` + `image.ops.fit` give for the
same file: uint8, RGB or ITU-R 601 luma (OpenCV's fixed-point weights), EXIF orientation applied
to JPEGs, 16-bit PNGs scaled by ``round(v / 257)``, alpha composited on white, area interpolation
when shrinking and bilinear when enlarging. What differs: TensorFlow's resize rounds in float
where OpenCV uses fixed point (a pixel may differ by 1 level), PNG/WebP EXIF orientation is not
applied, GIF transparency is dropped instead of composited, and only JPEG, PNG, GIF, BMP and WebP
decode (other files are skipped and counted; `write_shards` re-encodes them as PNG).

Per-image cost: a folder whose files all announce (in the first bytes read at listing) 8-bit PNGs
that ``decode_png`` alone decodes under the contract - gray, or gray/RGB for ``channels=3`` - is
read and decoded by one ``read_file`` + ``decode_png`` per image, without the format switch; when
they also share one size, the resize runs once per batch (`FileStream.finish`) instead of once
per image, and when that size is small (`INLINE_PIXELS`) a folder's files are read and decoded
`READ_GROUP` at a time by one Python call (`read_png_group`: the operating system's reads and
OpenCV's PNG decoder, the same lossless pixels) instead of one ``read_file`` + ``decode_png`` graph
call per file. A file changed after listing so that it no longer fits is skipped and counted.

Unreadable files never stop a run: files whose first bytes are no streamable image are skipped
when the folder is listed; a file that fails to decode in the stream is skipped there (the split
still yields one image per file: the slot goes to the next image of the following pass), and
`FileStream.skipped` names every file found unreadable so far.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
from pathlib import Path
from typing import Optional

import numpy as np

logger = logging.getLogger(__name__)

MAGIC = ((b"\xff\xd8\xff", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"GIF87a", "gif"), (b"GIF89a", "gif"),
         (b"BM", "bmp"))
MAX_PASSES = 4  # a split may lose up to 3/4 of its files to decode errors before its stream runs dry
READ_BUDGET = 512 * 2 ** 20  # bytes of float32 images `Splits.arrays` reads from a streamed split
SHUFFLE_BUDGET = 64 * 2 ** 20  # bytes of decoded images held by the shuffle buffer after a disk cache
INLINE_PIXELS = 64 * 64  # one-size plain PNGs up to this many pixels decode without a thread pool (`_parallel`)
READ_GROUP = 256  # such PNGs of a folder read and decoded per Python call (`read_png_group`)
HEAD = 26  # bytes read from every file at listing: the format's magic and, for PNG, the IHDR size/depth/colour


def sniff(head: bytes) -> Optional[str]:
    """The image format a file's first 16 bytes announce, if the stream can decode it."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return next((name for magic, name in MAGIC if head.startswith(magic)), None)


def png_layout(heads, channels: int) -> tuple:
    """``(plain, native)`` of files' first `HEAD` bytes: ``plain`` when every one is an 8-bit PNG
    that ``tf.io.decode_png(channels=channels)`` decodes exactly as `decode_image` does (gray;
    gray or RGB for ``channels=3``), ``native`` their common ``(h, w)`` (None when sizes differ)."""
    colours = (b"\x08\x00", b"\x08\x02") if channels == 3 else (b"\x08\x00",)
    sizes = set()
    for head in heads:
        if len(head) < HEAD or not head.startswith(b"\x89PNG\r\n\x1a\n") or head[12:16] != b"IHDR" \
                or head[24:26] not in colours:
            return False, None
        sizes.add((int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")))
    if not sizes:
        return False, None
    return True, (sizes.pop() if len(sizes) == 1 else None)


# ------------------------------------------------------------------------------ decoding


def read_png_group(paths, shape) -> tuple:
    """Read and decode plain 8-bit PNG files of one ``shape`` ``(h, w, channels)``: ``(ok bool [n],
    uint8 [n, h, w, channels])``, a file that cannot be read, fails to decode or has another size
    left as zeros with ``ok`` False. Gray files give gray (or RGB with the gray value repeated),
    RGB files RGB: the pixels ``tf.io.decode_png`` gives, with no TensorFlow call per file."""
    import os

    import cv2

    h, w, channels = (int(v) for v in shape)
    images = np.zeros((len(paths), h, w, channels), np.uint8)
    ok = np.zeros(len(paths), bool)
    buffer = bytearray(1 << 16)
    for i, path in enumerate(paths):
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                size = os.readv(fd, [buffer])
                data = np.frombuffer(buffer, np.uint8, size)
                if size == len(buffer):  # a larger file than small PNGs usually are: read the rest
                    data = np.concatenate([data, np.frombuffer(_read_rest(fd), np.uint8)])
            finally:
                os.close(fd)
        except OSError:
            continue
        # as stored (no conversion, no EXIF): gray or BGR for plain files, anything else converted
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if size else None
        if image is not None and image.ndim == 3 and image.shape[2] != 3:
            image = cv2.imdecode(data, (cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR)
                                 | cv2.IMREAD_IGNORE_ORIENTATION)
        if image is None or image.shape[:2] != (h, w) or image.dtype != np.uint8:
            continue
        if image.ndim == 2:
            images[i] = image[:, :, None]
        elif channels == 3:
            cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=images[i])
        else:
            continue  # an RGB file in a gray folder: not the file listed
        ok[i] = True
    return ok, images


def _read_rest(fd) -> bytes:
    import os

    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def decode_image(data, size, channels: int):
    """Encoded bytes (a scalar string tensor) -> uint8 ``[h, w, channels]`` at ``size`` = (h, w)
    under the package's pixel contract (see the module docstring). Raises on undecodable data.

    Inside a tf.data map every op of a branch not taken still costs a visit per image, so the
    graph is kept small: one switch on the format, where 8-bit gray PNGs (and 8-bit RGB PNGs
    read as RGB) decode inline in one op, and JPEG (exact DCT, EXIF orientation), other PNGs
    (16 bits, alpha, palette, luma) and GIF/BMP/WebP are single calls of functions that are not
    inlined; then one switch on the interpolation."""
    import tensorflow as tf

    jpeg, png, other = _format_decoders(channels)
    head = tf.strings.substr(data, 0, 8)
    depth_and_colour = tf.strings.substr(data, 24, 2)  # the IHDR chunk's bit depth and colour type
    plain = (depth_and_colour == b"\x08\x00") | (depth_and_colour == b"\x08\x02") if channels == 3 else (
        depth_and_colour == b"\x08\x00")
    kind = tf.where(tf.strings.substr(head, 0, 3) == b"\xff\xd8\xff", 0,
                    tf.where(head == b"\x89PNG\r\n\x1a\n", tf.where(plain, 3, 1), 2))
    image = tf.switch_case(kind, [lambda: jpeg(data), lambda: png(data), lambda: other(data),
                                  lambda: tf.io.decode_png(data, channels=channels)])
    image = tf.ensure_shape(image, [None, None, channels])
    return tf.ensure_shape(_resize(image, size), [size[0], size[1], channels])


@functools.lru_cache(maxsize=None)
def _format_decoders(channels: int) -> tuple:
    """The JPEG, PNG and GIF/BMP/WebP decoders of `decode_image` as ``tf.function``s kept out
    of line."""
    import tensorflow as tf

    signature = [tf.TensorSpec([], tf.string)]
    attributes = {"_noinline": True}

    @tf.function(input_signature=signature, experimental_attributes=attributes)
    def jpeg(data):
        image = tf.io.decode_jpeg(data, channels=channels, dct_method="INTEGER_ACCURATE")
        return _orient(image, exif_orientation(data))

    @tf.function(input_signature=signature, experimental_attributes=attributes)
    def png(data):  # 8-bit PNGs arrive as v * 257, so round(v / 257) gives them back exactly
        image = _from16(tf.io.decode_png(data, channels=0, dtype=tf.uint16))
        return _to_channels(_composite(image), channels)

    @tf.function(input_signature=signature, experimental_attributes=attributes)
    def other(data):  # WebP decodes to uint8 only
        image = tf.io.decode_image(data, channels=0, expand_animations=False)
        return _to_channels(_composite(image), channels)

    return jpeg, png, other


def _from16(image):
    import tensorflow as tf

    return tf.cast(tf.round(tf.cast(image, tf.float32) / 257.0), tf.uint8)


def _composite(image):
    """Gray+alpha / RGBA -> gray / RGB on a white background (as `image.io` does); an image
    without alpha goes through the same blend at full opacity, which leaves it unchanged."""
    import tensorflow as tf

    c = tf.shape(image)[-1]
    alpha_channels = tf.cast(tf.logical_or(c == 2, c == 4), tf.int32)
    colour = tf.cast(image[..., :c - alpha_channels], tf.float32)
    alpha = tf.cast(image[..., c - 1:], tf.float32) / 255.0
    alpha = alpha * tf.cast(alpha_channels, tf.float32) + (1.0 - tf.cast(alpha_channels, tf.float32))
    return tf.cast(colour * alpha + 255.0 * (1.0 - alpha) + 0.5, tf.uint8)


def _to_channels(image, channels):
    """1 or 3 channels -> ``channels``: RGB -> luma with OpenCV's fixed-point ITU-R 601 weights
    (gray is tiled to RGB first: equal weights summing to 16384 give the gray value back)."""
    import tensorflow as tf

    rgb = tf.tile(image, [1, 1, 3 // tf.shape(image)[-1]])
    if channels == 3:
        return rgb
    rgb = tf.cast(rgb, tf.int32)
    y = (rgb[..., :1] * 4899 + rgb[..., 1:2] * 9617 + rgb[..., 2:3] * 1868 + 8192) // 16384
    return tf.cast(y, tf.uint8)


def _resize(image, size):
    """Area interpolation when the target has fewer pixels, bilinear otherwise (which gives an
    image of the target size back unchanged)."""
    import tensorflow as tf

    shape = tf.shape(image)
    h, w = int(size[0]), int(size[1])
    shrink = h * w < shape[0] * shape[1]
    out = tf.cond(shrink, lambda: tf.image.resize(image, (h, w), method="area"),
                  lambda: tf.image.resize(image, (h, w), method="bilinear"))
    return _rounded(out)


def _rounded(pixels):
    """Resized float pixels back to uint8, rounded to the nearest level."""
    import tensorflow as tf

    return tf.cast(tf.clip_by_value(tf.round(pixels), 0.0, 255.0), tf.uint8)


def _resize_known(images, native, size):
    """`_resize` of images (one or a batch) whose size ``native`` is known when the graph is built:
    the same interpolation, chosen once; an image already at ``size`` is returned as it is."""
    import tensorflow as tf

    if tuple(native) == tuple(size):
        return images
    method = "area" if size[0] * size[1] < native[0] * native[1] else "bilinear"
    return _rounded(tf.image.resize(images, tuple(size), method=method))


def exif_orientation(data):
    """The EXIF orientation (1..8) of JPEG bytes, read in the graph; 1 when there is none."""
    import tensorflow as tf

    b = tf.cast(tf.io.decode_raw(tf.strings.substr(data, 0, 131072), tf.uint8), tf.int32)
    b = tf.concat([b, tf.zeros([32], tf.int32)], 0)  # reads past the end see zeros
    n = tf.shape(b)[0]

    def at(i):
        return tf.gather(b, tf.clip_by_value(i, 0, n - 1))

    def u16(i, little):
        return tf.where(little, at(i) + 256 * at(i + 1), 256 * at(i) + at(i + 1))

    def walking(pos, found, k):  # over the APPn segments that follow the start-of-image marker
        return (found < 0) & (k < 16) & (at(pos) == 0xFF) & (at(pos + 1) >= 0xE0) & (at(pos + 1) <= 0xEF)

    def step(pos, found, k):
        exif = at(pos + 1) == 0xE1
        for offset, byte in enumerate(b"Exif\0\0"):
            exif = exif & (at(pos + 4 + offset) == byte)
        return pos + 2 + 256 * at(pos + 2) + at(pos + 3), tf.where(exif, pos + 10, found), k + 1

    _, tiff, _ = tf.while_loop(walking, step, [tf.constant(2), tf.constant(-1), tf.constant(0)])
    little = at(tiff) == 0x49  # "II": little-endian TIFF header
    ifd = tiff + tf.where(little, u16(tiff + 4, little) + 65536 * u16(tiff + 6, little),
                          65536 * u16(tiff + 4, little) + u16(tiff + 6, little))
    entries = ifd + 2 + 12 * tf.range(64)
    match = (u16(entries, little) == 0x0112) & (tf.range(64) < u16(ifd, little))
    value = tf.reduce_max(tf.where(match, u16(entries + 8, little), 0))
    return tf.where((tiff >= 0) & (value >= 1) & (value <= 8), value, 1)


def _orient(image, orientation):
    """Rotate/flip so that EXIF ``orientation`` becomes 1 (as OpenCV's reader does)."""
    import tensorflow as tf

    def t():
        return tf.transpose(image, [1, 0, 2])

    return tf.switch_case(orientation - 1, [
        lambda: image, lambda: tf.reverse(image, [1]), lambda: tf.reverse(image, [0, 1]),
        lambda: tf.reverse(image, [0]), t, lambda: tf.reverse(t(), [1]), lambda: tf.reverse(t(), [0, 1]),
        lambda: tf.reverse(t(), [0])])


# --------------------------------------------------------------------------- the stream


class FileStream:
    """Images addressed by position 0..n-1 and decoded on demand; the base of the folder and
    TFRecord sources. Subclasses give the encoded bytes (`_encoded`) and a fingerprint.

    `stream` builds the decoded ``(position, uint8 image)`` pipeline of some positions, `finish`
    completes its batches, `read` decodes a bounded set into memory, `skipped` names the files
    found unreadable so far. ``plain`` / ``native`` (see `png_layout`) select the one-op decoder.
    """

    kind = "files"
    reads_paths = False  # whether `_encoded` items are file paths (then `read_png_group` may read them)

    def __init__(self, n: int, size, channels: int, *, skipped=(), workers=None):
        self.n = int(n)
        self.size = tuple(int(v) for v in size)
        self.channels = int(channels)
        self.workers = workers
        self._skipped = list(skipped)
        self._marks = None
        self._failed = None  # positions a grouped read found unreadable (`_group_decoder`)
        self.plain, self.native = False, None

    @property
    def shape(self) -> tuple:
        return (self.n, *self.size, self.channels)

    def __len__(self) -> int:
        return self.n

    # -- what subclasses provide -------------------------------------------------------------

    def _encoded(self, positions, *, shuffle, seed, shard, passes):
        """Unbatched ``(position int64, item)`` of ``positions`` (``passes`` times), where `_load`
        turns ``item`` into the encoded bytes inside the decoding map."""
        raise NotImplementedError

    def _load(self, item):
        return item

    def fingerprint(self) -> str:
        raise NotImplementedError

    def name(self, position: int) -> str:
        raise NotImplementedError

    # -- decoding ----------------------------------------------------------------------------

    def _parallel(self):
        """The decoding map's threads: ``workers`` when given; else none of its own for a one-size
        plain PNG folder of small images (at most `INLINE_PIXELS`: the map runs in the thread that
        pulls it, which saves the hand-over of every file to a pool and back, a large part of the
        cost of reading and decoding such a file), and ``AUTOTUNE`` otherwise."""
        import tensorflow as tf

        if self.workers:
            return self.workers
        if self.plain and self.native is not None and self.native[0] * self.native[1] <= INLINE_PIXELS:
            return None
        return tf.data.AUTOTUNE

    def _grouped(self) -> bool:
        """Whether `stream` reads and decodes its files `READ_GROUP` at a time (`read_png_group`):
        a folder (`reads_paths`) of one-size plain PNGs small enough to decode inline."""
        return self.reads_paths and self._parallel() is None

    def _deferred(self) -> bool:
        """Whether every image decodes at the one size `native` and is resized per batch."""
        return self.plain and self.native is not None and self.native != self.size

    def _decode(self, data, defer: bool):
        """Encoded bytes -> uint8 image at `size` (at `native` when ``defer``)."""
        import tensorflow as tf

        size, channels = self.size, self.channels
        if not self.plain:
            return decode_image(data, size, channels)
        image = tf.io.decode_png(data, channels=channels)
        if self.native is None:
            return tf.ensure_shape(_resize(tf.ensure_shape(image, [None, None, channels]), size), [*size, channels])
        image = tf.ensure_shape(image, [*self.native, channels])
        return image if defer else _resize_known(image, self.native, size)

    def _mark_variables(self):
        """Which positions were tried and which decoded, for `skipped`."""
        import tensorflow as tf

        if self._marks is None:
            self._marks = (tf.Variable(tf.zeros([self.n], tf.bool), trainable=False),
                           tf.Variable(tf.zeros([self.n], tf.bool), trainable=False))
        return self._marks

    def _decoder(self, marked: bool, defer: bool = False):
        """The one map function of a stream: load, decode (and mark) one item. With ``defer`` the
        image stays at `native` size and `finish` resizes and marks its batch."""
        import tensorflow as tf

        if not marked:
            return lambda pos, item: (pos, self._decode(self._load(item), defer))
        tried, done = self._mark_variables()

        def decode(pos, item):
            with tf.control_dependencies([tried.scatter_nd_update([[pos]], [True])]):
                image = self._decode(self._load(item), defer)
            if defer:
                return pos, image
            with tf.control_dependencies([image]):
                marked = done.scatter_nd_update([[pos]], [True])
            with tf.control_dependencies([marked]):
                return pos, tf.identity(image)
        return decode

    def _group_decoder(self, defer: bool):
        """`_decoder` for groups of files: ``(positions [k], paths [k])`` -> the positions and
        images of the files that decoded (at `native` size when ``defer``). The reading function
        takes the positions (one int64 array, cheaper to hand to Python than ``k`` path strings),
        returns only what decoded and records the positions that did not in `_failed`, which
        `skipped` checks again; without ``defer`` the decoded ones are marked done."""
        import tensorflow as tf

        shape = (*self.native, self.channels)
        if self._failed is None:
            self._failed = np.zeros(self.n, bool)
        failed, paths = self._failed, self.paths

        def read(pos):
            ok, images = read_png_group(paths[pos], shape)
            if ok.all():
                return pos, images
            failed[pos[~ok]] = True
            return pos[ok], images[ok]

        def decode(pos, _paths):
            pos, images = tf.numpy_function(read, [pos], (tf.int64, tf.uint8))
            pos, images = tf.ensure_shape(pos, [None]), tf.ensure_shape(images, [None, *shape])
            if defer:
                return pos, images
            _, done = self._mark_variables()
            images = _resize_known(images, self.native, self.size)
            with tf.control_dependencies([done.scatter_nd_update(pos[:, None], tf.ones_like(pos, tf.bool))]):
                return pos, tf.identity(images)
        return decode

    def finish(self, positions, images):
        """A batch of a `stream`: ``(positions [B], uint8 images [B, ...])`` -> images at `size`,
        the positions marked decoded. Every batch of a stream goes through it."""
        import tensorflow as tf

        _, done = self._mark_variables()
        images = _resize_known(images, images.shape[1:3], self.size)
        with tf.control_dependencies([done.scatter_nd_update(positions[:, None], tf.ones_like(positions, tf.bool))]):
            return tf.identity(images)

    def stream(self, positions, *, shuffle: bool = False, seed: int = 0, cache: Optional[str] = None,
               shard=None, refill: bool = True):
        """Decoded ``(position, image)`` of ``positions``, exactly ``ceil(len / workers)`` per pass.

        ``shuffle`` reshuffles every pass (before decoding; after a disk cache, in a buffer of at
        most `SHUFFLE_BUDGET` bytes). Only the first of the `MAX_PASSES` passes over the files is
        shuffled; the refill passes behind it keep the listing order. A shuffle draws its order from
        a generator that each new pass advances, and the parallel decoding reads ahead past the
        ``take`` by a timing-dependent amount: a shuffled refill pass would advance the generator
        some epochs and not others, so the next epoch's order would depend on the machine's load.
        ``shard=(workers, index)`` keeps one worker's share (files
        split between workers). A file that fails to decode is skipped and its slot goes to the
        next image of a following pass, so the length is known to ``model.fit``. Batch it and pass
        every batch through `finish` (images of a one-size PNG folder arrive at their own size).
        ``refill=False`` streams one pass with no slot refilled: each readable image once, the
        length unknown (a test report's count; not for ``fit`` or a disk cache).
        """
        import tensorflow as tf

        positions = np.asarray(positions, np.int64)
        workers = shard[0] if shard else 1
        count = math.ceil(len(positions) / workers)
        if not refill and cache:
            raise ValueError("A stream cached on disk refills the slots of unreadable files; "
                             "refill=False takes no cache.")
        ds = self._encoded(positions, shuffle=shuffle, seed=seed, shard=shard, passes=MAX_PASSES if refill else 1)
        defer = self._deferred() and not cache  # a disk cache keeps the images at their final size
        if self._grouped():
            ds = ds.batch(READ_GROUP).map(self._group_decoder(defer)).unbatch()
        else:
            ds = ds.map(self._decoder(marked=True, defer=defer), num_parallel_calls=self._parallel())
        ds = ds.ignore_errors()
        if not refill:
            return ds
        ds = ds.take(count).apply(tf.data.experimental.assert_cardinality(count))
        if cache:
            _clear_stale_lock(cache)
            ds = ds.cache(cache)
            if shuffle:
                per_image = int(np.prod(self.size)) * self.channels
                ds = ds.shuffle(max(64, min(count, SHUFFLE_BUDGET // per_image)), seed=seed,
                                reshuffle_each_iteration=True)
        return ds

    def read(self, positions) -> tuple:
        """Decode ``positions`` into memory: ``(decoded positions, uint8 [k, h, w, c])``, in
        ``positions`` order, leaving out the files that fail (they are not marked as skipped)."""
        positions = np.asarray(positions, np.int64)
        if not len(positions):
            return positions, np.zeros((0, *self.size, self.channels), np.uint8)
        ds = self._encoded(positions, shuffle=False, seed=0, shard=None, passes=1)
        ds = ds.map(self._decoder(marked=False, defer=self._deferred()), num_parallel_calls=self._parallel())
        ds = ds.ignore_errors().batch(256).map(lambda pos, batch: (pos, _resize_known(batch, batch.shape[1:3],
                                                                                      self.size)))
        got, images = [], []
        for pos, batch in ds.as_numpy_iterator():
            got.append(pos)
            images.append(batch)
        if not got:
            return np.zeros(0, np.int64), np.zeros((0, *self.size, self.channels), np.uint8)
        got, images = np.concatenate(got), np.concatenate(images)
        rank = {int(p): i for i, p in enumerate(positions)}
        order = np.argsort([rank[int(p)] for p in got], kind="stable")
        return got[order], images[order]

    def first_readable(self, positions) -> Optional[int]:
        """The first of ``positions`` that decodes, trying them in small groups; None if none."""
        positions = np.asarray(positions, np.int64)
        start = 0
        while start < len(positions):
            group = positions[start:start + (1 if start == 0 else 64)]  # one file first: usually enough
            got, _ = self.read(group)
            self._skipped += [self.name(int(p)) for p in np.setdiff1d(group, got)]
            if len(got):
                return int(got[0])
            start += len(group)
        return None

    def skipped(self) -> list:
        """Names of the files found unreadable so far: at listing, in probes, in the streams."""
        found = list(self._skipped)
        suspects = np.zeros(self.n, bool) if self._failed is None else self._failed.copy()
        if self._marks is not None:
            tried, done = (v.numpy() for v in self._marks)
            suspects |= tried & ~done  # failed, or still in flight when asked
        suspects = np.flatnonzero(suspects)
        if len(suspects):
            got, _ = self.read(suspects)
            found += [self.name(int(p)) for p in np.setdiff1d(suspects, got)]
        return list(dict.fromkeys(found))

    def cache_name(self, positions, *, shuffle, seed, shard) -> str:
        """A file prefix unique to what a cached stream holds (source, positions, size, shard)."""
        digest = hashlib.sha1()
        for part in (self.fingerprint(), self.size, self.channels, shuffle and seed, shard, "v1"):
            digest.update(repr(part).encode())
        digest.update(np.asarray(positions, np.int64).tobytes())
        return f"{self.kind}-{digest.hexdigest()[:16]}"


def _clear_stale_lock(prefix: str) -> None:
    """tf.data leaves ``PREFIX.lockfile`` behind when a run is killed while writing its cache;
    such a cache was never completed, and the lock would stop every later run."""
    lock = Path(f"{prefix}.lockfile")
    if lock.exists():
        logger.warning("Removing the lock of an unfinished cache %s (a run stopped while writing it).", lock)
        lock.unlink()
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)


# ---------------------------------------------------------------------------- folders


class FolderStream(FileStream):
    """The image files of a ``dir:`` source, in listing order."""

    kind = "dir"
    reads_paths = True

    def __init__(self, paths, size, channels, *, skipped=(), workers=None, fingerprint="", heads=()):
        super().__init__(len(paths), size, channels, skipped=skipped, workers=workers)
        self.paths = np.asarray([str(p) for p in paths])
        self._fingerprint = fingerprint
        if len(heads) == len(paths):
            self.plain, self.native = png_layout(heads, self.channels)

    def fingerprint(self) -> str:
        return self._fingerprint

    def name(self, position: int) -> str:
        return str(self.paths[position])

    def _encoded(self, positions, *, shuffle, seed, shard, passes):
        import tensorflow as tf

        if shard:
            positions = positions[shard[1]::shard[0]]
        ds = tf.data.Dataset.from_tensor_slices((positions, self.paths[positions]))
        if not shuffle:
            return ds.repeat(passes)
        shuffled = ds.shuffle(len(positions), seed=seed, reshuffle_each_iteration=True)
        return shuffled.concatenate(ds.repeat(passes - 1))  # see `FileStream.stream`: one draw per pass

    def _load(self, item):
        import tensorflow as tf

        return tf.io.read_file(item)


def list_folder(root, *, streamable_only: bool = True, heads: Optional[list] = None) -> tuple:
    """``dir:`` listing: ``(paths, labels, class names, skipped, fingerprint)``. Every file under a
    class folder is looked at (any extension); those whose first bytes are no streamable image
    are skipped (named in ``skipped``) unless ``streamable_only`` is False; hidden files and
    empty class folders are left out. A list passed as ``heads`` receives each kept file's first
    `HEAD` bytes."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"Dataset folder {str(root)!r} does not exist or is not a folder.")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    paths, labels, names, skipped = [], [], [], []
    digest = hashlib.sha1(str(root.resolve()).encode())
    listed = 0
    for class_dir in class_dirs:
        members = sorted(p for p in class_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
        kept = []
        for path in members:
            try:
                with open(path, "rb") as f:
                    head = f.read(HEAD)
                stat = path.stat()
            except OSError:
                head, stat = b"", None
            if stat is None or (streamable_only and sniff(head) is None):
                skipped.append(str(path))
                continue
            kept.append(path)
            if heads is not None:
                heads.append(head)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        listed += len(members)
        if not kept:
            if not members:
                logger.warning("Ignoring empty class folder %s.", class_dir)
            continue
        paths += kept
        labels += [len(names)] * len(kept)
        names.append(class_dir.name)
    if not listed:
        raise ValueError(f"Dataset folder {str(root)!r} has no class sub-folders with files; "
                         "expected PATH/<class_name>/<image files>.")
    if not paths:
        raise ValueError(f"Dataset folder {str(root)!r} has no readable images ({len(skipped)} file(s) are not "
                         "JPEG, PNG, GIF, BMP or WebP images).")
    if skipped:
        logger.warning("Skipped %d file(s) in %s that are not JPEG, PNG, GIF, BMP or WebP images.", len(skipped), root)
    return paths, np.array(labels, np.int32), names, skipped, digest.hexdigest()


def open_folder(root, *, size, channels, workers=None):
    """The `FolderStream` of a ``dir:`` spec with its labels and class names. ``size`` None takes
    the size of the first readable image. Raises when no file decodes, naming the count."""
    heads = []
    paths, labels, names, skipped, fingerprint = list_folder(root, heads=heads)
    if size is None:
        size = _first_size(paths, channels)
    stream = FolderStream(paths, size, channels, skipped=skipped, workers=workers, fingerprint=fingerprint,
                          heads=heads)
    if stream.first_readable(np.arange(len(paths))) is None:
        raise ValueError(f"Dataset folder {str(root)!r} has no readable images ({len(stream.skipped())} file(s) "
                         "could not be decoded).")
    return stream, labels, names


def _first_size(paths, channels) -> tuple:
    """(h, w) of the first file that decodes (the size every image is then resized to)."""
    from keras_cv_apps.image.io import ImageReadError, read_image

    for path in paths:
        try:
            return read_image(path, mode="gray" if channels == 1 else "rgb").shape[:2]
        except (ImageReadError, OSError):
            continue
    return (1, 1)


def check_split_readable(stream: FileStream, indices: dict) -> None:
    """Every split must hold at least one decodable file, or its stream could never fill."""
    for split, idx in indices.items():
        if len(idx) and stream.first_readable(idx) is None:
            raise ValueError(f"None of the {len(idx)} file(s) of the {split} split could be decoded.")
