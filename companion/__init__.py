"""Companion library of the book *Large language models and supervised fine-tuning*.

Each module is named after the concept it implements (``glove``, ``lstm``, ``losses``, ...);
the notebooks under ``notebooks/`` explain and call them.
"""

__version__ = "0.1.0"
