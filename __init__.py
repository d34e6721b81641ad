"""keras-tasks: classic NLP and vision tasks end to end on Keras 3."""

__version__ = "0.1.0"
