"""pytest configuration shared by the whole suite.

Hypothesis runs derandomized (the same examples on every run and machine, so
CI is reproducible) with no deadline (encoders are pure NumPy for now and a
loaded CI box must not turn slowness into failures) and a modest number of
examples, so the suite stays well under five minutes on two cores.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "lrq",
    derandomize=True,
    deadline=None,
    max_examples=60,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
# A longer local run: LRQ_HYPOTHESIS_PROFILE=lrq-long python -m pytest tests
settings.register_profile("lrq-long", parent=settings.get_profile("lrq"), max_examples=2000)
settings.load_profile(os.environ.get("LRQ_HYPOTHESIS_PROFILE", "lrq"))


def pytest_configure(config):
    # "slow" is a label, not a skip: slow tests run by default; deselect them
    # with -m "not slow" for a quick loop.
    config.addinivalue_line("markers", "slow: takes more than a few seconds (still runs by default)")
    # Warnings are errors (pyproject), but this one comes from hypothesis'
    # own failure reporting and would hide the real failure behind an
    # INTERNALERROR.
    config.addinivalue_line("filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")
