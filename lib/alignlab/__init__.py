"""alignlab: what LLM alignment keeps and what it leaks.

Reproduces Vaccine (Huang et al., NeurIPS 2024) and "Extracting alignment data in open
models" (Barbero et al., 2025) on one pipeline. Notebooks in ``notebooks/`` tell the story;
this package holds the logic.
"""

__version__ = "0.1.0"
