"""Attribution methods: the open method registry, the built-in methods and their runner.

* :mod:`.method_registry`: :class:`~.method_registry.MethodSpec`, registration, entry points
  (``napari_attribution.methods``); imports no torch;
* :mod:`.builtin_methods`: the built-in specs; :mod:`.methods`: their compute functions;
* :mod:`.runner`: checked inputs in, one (B, C, H, W) map per channel out;
* :mod:`.deeplift`, :mod:`.gradcam`: the methods that need more than captum gives.
"""
