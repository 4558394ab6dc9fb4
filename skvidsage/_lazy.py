"""Public names of a package, imported from its modules on first use (PEP 562).

Importing a light module such as the decoder (in every decoding worker
process) runs the ``__init__`` of each package above it; with lazy exports
those do not load torch and PyG.
"""

import importlib

__all__ = ["attach"]


def attach(package, exports):
    """Return ``(__getattr__, __dir__, __all__)`` for a package's lazy names.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : dict of str to str
        Public name to the module, relative to ``package``, that defines it.

    Examples
    --------
    >>> import skvidsage.video
    >>> "read_frames" in skvidsage.video.__all__
    True
    >>> skvidsage.video.read_frames.__module__
    'skvidsage.video._decode'
    """

    def __getattr__(name):
        if name in exports:
            module = importlib.import_module(f"{package}.{exports[name]}")
            value = getattr(module, name)
            setattr(importlib.import_module(package), name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted([*vars(importlib.import_module(package)), *exports])

    return __getattr__, __dir__, sorted(exports)
