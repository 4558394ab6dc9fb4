"""Sphinx configuration of the skvidsage documentation.

Build with ``make docs`` (warnings are errors). The example gallery runs every
``examples/plot_*.py`` in its fast mode; set ``SKVIDSAGE_DOCS_NO_GALLERY=1`` to
build the pages without running the examples (for quick edits only).
"""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "sphinxext"))

# The examples read these before they run: a fast variant, a place for their
# outputs, and the real YouTube-8M files when this checkout sits beside them.
os.environ.setdefault("SKVIDSAGE_EXAMPLES_FAST", "1")
os.environ.setdefault("SKVIDSAGE_OUTPUT", str(DOCS / "_build" / "example_output"))
_YT8M = ROOT.parent / "shared" / "data" / "yt8m"
if _YT8M.is_dir():
    os.environ.setdefault("SKVIDSAGE_YT8M", str(_YT8M))
os.environ.setdefault("MPLBACKEND", "Agg")

import warnings  # noqa: E402

# torch emits this on import (through PyG); it is not about this project
warnings.filterwarnings(
    "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
)

import skvidsage  # noqa: E402

# -- project -----------------------------------------------------------------
project = "skvidsage"
author = "the skvidsage developers"
copyright = "the skvidsage developers"  # noqa: A001
release = skvidsage.__version__
version = ".".join(release.split(".")[:2])

# -- general -----------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.codeobj.json",
    "sphinxext",
]
root_doc = "index"
default_role = "literal"
add_module_names = False

# -- autodoc / autosummary / numpydoc -------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# -- intersphinx ----------------------------------------------------------------
# The build machines are offline, and an inventory that cannot be fetched is a
# warning (an error under -W). Links to other projects' docs are therefore
# opt-in: SKVIDSAGE_DOCS_INTERSPHINX=1 make docs
intersphinx_mapping = {}
if os.environ.get("SKVIDSAGE_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
        "joblib": ("https://joblib.readthedocs.io/en/stable", None),
    }

# -- example gallery ----------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # only plot_*.py run; demo.py is `make demo` and stays out of the gallery
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"(__init__\.py|demo\.py)$",
    "within_subsection_order": "skvidsage_gallery.ExampleOrder",
    "plot_gallery": os.environ.get("SKVIDSAGE_DOCS_NO_GALLERY") != "1",
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "show_memory": False,
    "line_numbers": False,
    "doc_module": ("skvidsage",),
}

# -- HTML ------------------------------------------------------------------------
try:
    import pydata_sphinx_theme  # noqa: F401

    html_theme = "pydata_sphinx_theme"
    html_theme_options = {
        "navigation_with_keys": False,
        "show_toc_level": 2,
        "header_links_before_dropdown": 7,
    }
except ImportError:
    html_theme = "alabaster"
html_title = f"skvidsage {release}"
html_show_sourcelink = False
html_last_updated_fmt = None


def _skip_metadata_requests(app, what, name, obj, skip, options):
    # scikit-learn's generated ``set_<method>_request`` methods (metadata
    # routing) link to its own glossary, which these docs do not have
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    """Connect the skip hook."""
    app.connect("autodoc-skip-member", _skip_metadata_requests)
