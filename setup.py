# SPDX-License-Identifier: MIT
# Metadata lives in pyproject.toml; this file exists only because setuptools
# takes cffi_modules from setup() arguments, not from pyproject.toml.
from setuptools import setup

setup(cffi_modules=["bindings/_build.py:ffibuilder"])
