import os
import sys

# Shared helpers (test_case.py) live beside this file.
sys.path.insert(0, os.path.dirname(__file__))
