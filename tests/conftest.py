import os
import sys

# Shared helpers (test_case.py) live beside this file.
sys.path.insert(0, os.path.dirname(__file__))

import pytest  # noqa: E402


@pytest.fixture
def browser():
    """Headless Chromium for the demo-page tests; a missing browser or selenium fails the test (CI must run it)."""
    import demo_page

    if demo_page.missing():
        pytest.fail(demo_page.missing())
    with demo_page.chromium() as driver:
        yield driver
