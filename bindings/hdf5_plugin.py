# SPDX-License-Identifier: MIT
"""The HDF5 filter plugin as a setuptools extension: ``lrq/hdf5_plugin/libh5lrq.so``.

The plugin is a plain shared library, not a Python module: HDF5 dlopens
every ``lib*.so*`` file of a plugin folder and calls its two ``H5PL``
entry points.  It compiles the whole C core into itself (HDF5 programs
such as h5dump load it without Python, so it cannot lean on the cffi
extension) together with ``c_src/hdf5``.  Sources and flags come from the
two build descriptions, ``c_src/Makefile`` (the core) and
``c_src/hdf5/Makefile`` (the plugin), read as ``bindings/_build.py`` reads
the first.  :class:`BuildExt` gives the library its fixed file name
instead of a Python extension suffix.
"""

from __future__ import annotations

import os
import pathlib
import sys

from setuptools import Extension
from setuptools.command.build_ext import build_ext

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _build import build_description  # noqa: E402

PLUGIN_DIR = pathlib.Path("c_src") / "hdf5"
MODULE = "lrq.hdf5_plugin.libh5lrq"


def extension() -> Extension:
    core = build_description()
    plugin = build_description(PLUGIN_DIR / "Makefile")
    sources = [str(PLUGIN_DIR / s) for s in plugin["LRQ_PLUGIN_SOURCES"]] + core["LRQ_SOURCES"]
    return Extension(
        MODULE,
        sources=sources,
        include_dirs=core["LRQ_INCLUDE_DIRS"] + [str(PLUGIN_DIR)],
        extra_compile_args=core["LRQ_CFLAGS"] + core["LRQ_OPT_CFLAGS"],
        extra_link_args=core["LRQ_LDFLAGS"] + plugin["LRQ_PLUGIN_LIBS"],
        py_limited_api=False,
    )


class BuildExt(build_ext):
    """build_ext that names the plugin ``libh5lrq.so`` (HDF5's pattern)."""

    def get_ext_filename(self, fullname):
        if fullname.split(".")[-1] == MODULE.rsplit(".", 1)[-1]:
            return os.path.join(*fullname.split(".")) + ".so"
        return super().get_ext_filename(fullname)

    def get_export_symbols(self, ext):
        if ext.name == MODULE:
            return ["H5PLget_plugin_type", "H5PLget_plugin_info"]
        return super().get_export_symbols(ext)

    def copy_extensions_to_source(self):
        # An editable install copies the library into the source tree, into
        # a folder that holds nothing else and so is not in the repository.
        build_py = self.get_finalized_command("build_py")
        for ext in self.extensions:
            package = self.get_ext_fullname(ext.name).rpartition(".")[0]
            os.makedirs(build_py.get_package_dir(package), exist_ok=True)
        super().copy_extensions_to_source()
