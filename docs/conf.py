"""Sphinx configuration for bpflink's documentation (built by scripts/test with warnings as errors).

Why Sphinx (autodoc + napoleon + myst-parser) rather than mkdocs + mkdocstrings: autodoc imports the real,
compiled package, so the reference shows what users get (the lazily imported names of ``bpflink`` and
``bpflink.opts``, enums whose members come from the compiled headers, the C base of the fd owners), while
mkdocstrings reads source statically and would miss or misplace those. myst-parser keeps every page Markdown,
so the existing docs (kernel matrix, reliability, benchmarks) and README sections are included, not copied.
"""

from __future__ import annotations

import bpflink

project = "bpflink"
author = "The bpflink authors"
copyright = "2026, The bpflink authors"
release = bpflink.__version__
version = release

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "alabaster"
html_title = f"bpflink {release}"
html_static_path: list[str] = []
