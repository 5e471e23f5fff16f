"""Which copy of a duplicate group to keep, and why, in words a person can check.

The default rule, ``quality``, keeps the best copy. Copies are compared criterion by criterion;
the first one that differs decides:

1. a real file beats a symlink (removing a link frees nothing, removing its target breaks it);
2. lossless (PNG, BMP, TIFF, lossless WebP) beats lossy (JPEG, lossy WebP) and 256-colour palette
   images (GIF, palette PNG or BMP: a photo loses colours to the palette);
3. more bits per channel (16-bit beats 8-bit);
4. more pixels (the original beats a downscaled copy);
5. less compression: a higher estimated JPEG quality (from the file's quantisation table), else
   more bytes per pixel for lossy files;
6. sharper (variance of the Laplacian over the image's variance, on the 128 px gray image the hashes
   came from, so stretching the contrast does not make a copy "sharper"). Copies at or above the
   group's typical sharpness divided by `SHARPNESS_STEP` tie: a blurred copy falls below and
   loses, while the edges that noise or a watermark add cannot make a copy win. The typical
   sharpness is the lower median of the group (for two copies their geometric mean), not the
   sharpest copy's;
7. older (modification time: the first copy was probably the original);
8. shorter path, then alphabetical order (so the choice is always the same).

Other rules put one criterion first and fall back to ``quality`` for ties: ``newest`` and
``oldest`` (modification time), ``largest`` (pixels, then file size) and ``pattern:GLOB`` (files
whose path relative to the scanned folder matches the glob, e.g. ``pattern:originals/*``).
`choose` returns the representative and one sentence per file saying why it was kept or why
another copy was preferred to it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import statistics
import time
from typing import Optional

RULES = ("quality", "newest", "oldest", "largest", "pattern:GLOB")
SHARPNESS_STEP = 1.3  # copies within 30% of the group's typical sharpness (or above it) count as equally sharp


@dataclasses.dataclass
class Facts:
    """What the keep rules compare for one file."""

    name: str  # path relative to the scanned folder (for patterns and messages)
    is_link: bool
    format: str  # e.g. "PNG", "JPEG"
    lossless: bool
    bit_depth: int
    height: int
    width: int
    nbytes: int
    quality: Optional[int]  # estimated JPEG quality
    sharpness: float
    mtime: float
    palette: bool = False  # pixels index a table of at most 256 colours
    group_sharpness: float = 0.0  # set by `choose`: the group's typical sharpness (`_typical_sharpness`)

    @property
    def pixels(self) -> int:
        return self.height * self.width

    @property
    def bytes_per_pixel(self) -> float:
        return self.nbytes / max(self.pixels, 1)

    def label(self) -> str:
        """``PNG 16-bit 512x512`` / ``JPEG q~40 512x512``."""
        text = self.format + (f" {self.bit_depth}-bit" if self.bit_depth != 8 else "")
        text += " palette" if self.palette else ""
        text += f" q~{self.quality}" if self.quality is not None else ""
        return f"{text} {self.width}x{self.height}"


def check_rule(rule: str) -> str:
    """``rule`` if valid, else ValueError naming the choices."""
    if rule in RULES[:-1] or (isinstance(rule, str) and rule.startswith("pattern:") and len(rule) > 8):
        return rule
    raise ValueError(f"Unknown keep rule {rule!r}; choose one of quality, newest, oldest, largest or "
                     "pattern:GLOB (e.g. pattern:originals/*).")


def _day(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


# (name, key: larger is better, sentence "why the kept file won" given (kept, other))
_CRITERIA = {
    "file": (lambda f: not f.is_link,
             lambda k, o: "a real file over a symlink"),
    "lossless": (lambda f: f.lossless,
                 lambda k, o: f"lossless {k.format} over " + (f"256-colour palette {o.format}" if o.palette
                                                               else f"lossy {o.format}")),
    "depth": (lambda f: f.bit_depth,
              lambda k, o: f"{k.bit_depth}-bit over {o.bit_depth}-bit"),
    "pixels": (lambda f: f.pixels,
               lambda k, o: f"{k.width}x{k.height} pixels over {o.width}x{o.height}"),
    "compression": (lambda f: (f.quality or 0, 0.0 if f.lossless else round(f.bytes_per_pixel, 3)),
                    lambda k, o: (f"JPEG quality ~{k.quality} over ~{o.quality}"
                                  if k.quality is not None and o.quality is not None and k.quality != o.quality
                                  else f"less compressed ({k.bytes_per_pixel:.2f} over {o.bytes_per_pixel:.2f} "
                                       "bytes/pixel)")),
    "sharpness": (lambda f: f.sharpness * SHARPNESS_STEP >= f.group_sharpness,
                  lambda k, o: f"sharper (Laplacian-to-image variance {k.sharpness:.2f} over {o.sharpness:.2f})"),
    "older": (lambda f: -round(f.mtime),
              lambda k, o: f"older (modified {_day(k.mtime)}, the other {_day(o.mtime)})"),
    "newer": (lambda f: round(f.mtime),
              lambda k, o: f"newer (modified {_day(k.mtime)}, the other {_day(o.mtime)})"),
    "larger": (lambda f: (f.pixels, f.nbytes),
               lambda k, o: f"larger ({k.width}x{k.height}, {k.nbytes:,} bytes over {o.width}x{o.height}, "
                            f"{o.nbytes:,} bytes)"),
    "path": (lambda f: (-len(f.name), tuple(-ord(c) for c in f.name)),
             lambda k, o: "same quality; the shorter (or first) path"),
}
_QUALITY = ("file", "lossless", "depth", "pixels", "compression", "sharpness", "older", "path")


def _order(rule: str) -> tuple:
    if rule == "newest":
        return ("file", "newer") + _QUALITY[1:]
    if rule == "oldest":
        return ("file", "older") + _QUALITY[1:]
    if rule == "largest":
        return ("file", "larger") + _QUALITY[1:]
    return _QUALITY


def _key(facts: Facts, order, pattern):
    keys = tuple(_CRITERIA[name][0](facts) for name in order)
    return ((fnmatch.fnmatch(facts.name, pattern),) + keys) if pattern else keys


def _typical_sharpness(facts: list) -> float:
    """The group's lower median sharpness; for two copies their geometric mean."""
    values = [max(f.sharpness, 0.0) for f in facts]
    if len(values) == 2:
        return math.sqrt(values[0] * values[1])
    return float(statistics.median_low(values)) if values else 0.0


def choose(facts: list, rule: str = "quality") -> tuple:
    """The index of the file to keep among ``facts`` and one reason per file.

    The kept file's reason says what made it win over the runner-up; every other file's reason
    says which criterion preferred the kept file to it.
    """
    check_rule(rule)
    pattern = rule[len("pattern:"):] if rule.startswith("pattern:") else None
    order = _order(rule)
    facts = [dataclasses.replace(f, group_sharpness=_typical_sharpness(facts)) for f in facts]
    keys = [_key(f, order, pattern) for f in facts]
    best = max(range(len(facts)), key=keys.__getitem__)
    kept = facts[best]
    reasons = []
    for i, other in enumerate(facts):
        if i == best:
            continue
        reasons.append((i, _why(kept, other, keys[best], keys[i], order, pattern)))
    runner_up = max((i for i in range(len(facts)) if i != best), key=keys.__getitem__, default=None)
    head = f"kept ({'best copy' if rule == 'quality' else rule})"
    if runner_up is not None:
        head += ": " + _why(kept, facts[runner_up], keys[best], keys[runner_up], order, pattern)
    out = [""] * len(facts)
    out[best] = head
    for i, why in reasons:
        out[i] = f"copy; the kept file wins on {why}"
    return best, out


def _why(kept: Facts, other: Facts, kept_key, other_key, order, pattern) -> str:
    if pattern:
        if kept_key[0] != other_key[0]:
            return f"its path matches {pattern!r}"
        kept_key, other_key = kept_key[1:], other_key[1:]
    for name, a, b in zip(order, kept_key, other_key):
        if a != b:
            return _CRITERIA[name][1](kept, other)
    return "identical in every criterion; the first path"
