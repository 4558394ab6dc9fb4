"""Order of the examples in the gallery: from a first pipeline to deployment."""

from pathlib import Path

# Substrings of example file names, in the order a new user should read them;
# examples that match none come last, by file name.
_ORDER = (
    "quickstart",
    "yt8m",
    "youtube",
    "grid",
    "object",
    "detect",
    "retrieval",
    "scal",
    "save",
    "load",
    "persist",
)


class ExampleOrder:
    """Sort key for sphinx-gallery's ``within_subsection_order``."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        """Rank ``filename`` by the first word of ``_ORDER`` it contains."""
        name = Path(filename).name
        for rank, word in enumerate(_ORDER):
            if word in name:
                return (rank, name)
        return (len(_ORDER), name)

    def __repr__(self):
        return f"<{self.__class__.__name__}>"
