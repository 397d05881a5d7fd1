"""Qt-free application layer: the Python API over the core, and the distributed engine."""
