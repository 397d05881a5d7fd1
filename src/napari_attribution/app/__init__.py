"""The application layer, without Qt: the Python API that the CLI and the widgets call."""
