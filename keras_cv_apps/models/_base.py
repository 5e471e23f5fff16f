"""`ConfigModel`: the one base of the package's subclassed models.

A subclass builds a functional graph in ``__init__`` (keras-hub ``Backbone`` style), calls
``super().__init__(inputs=..., outputs=..., **kwargs)`` and then ``self.remember(...)`` with its
own constructor arguments. `get_config` returns exactly those arguments (plus ``name`` and
``trainable``) and `from_config` calls the constructor with them, so a ``.keras`` file rebuilds
the same graph in a fresh process.
"""

from __future__ import annotations

import types

import keras


def _plain(value):
    """Tuples become lists so the config is what JSON gives back (the constructors take both)."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


class ConfigModel(keras.Model):
    """A functional ``keras.Model`` subclass whose config is its constructor arguments."""

    def remember(self, **arguments) -> None:
        """Record the constructor arguments `get_config` returns; each also becomes an attribute."""
        for key, value in arguments.items():
            setattr(self, key, value)
        # a MappingProxyType is not wrapped by Keras' attribute tracking; a subclass adds its own
        # arguments to those its parent class remembered
        self._arguments = types.MappingProxyType({**getattr(self, "_arguments", {}), **arguments})

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable,
                **{key: _plain(value) for key, value in self._arguments.items()}}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
