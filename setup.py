# SPDX-License-Identifier: MIT
# Metadata lives in pyproject.toml; this file exists only because setuptools
# takes cffi_modules and extension builders from setup() arguments, not from
# pyproject.toml.  The HDF5 filter plugin (bindings/hdf5_plugin.py) is a
# second, plain shared library built next to the cffi extension.
import sys

from setuptools import setup

sys.path.insert(0, "bindings")
import hdf5_plugin  # noqa: E402

setup(
    cffi_modules=["bindings/_build.py:ffibuilder"],
    ext_modules=[hdf5_plugin.extension()],
    cmdclass={"build_ext": hdf5_plugin.BuildExt},
)
