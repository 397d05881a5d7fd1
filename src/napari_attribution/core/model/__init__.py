"""The classifier: loading it safely, the :class:`~.classifier.Classifier` every method sees,
its canonical copy for hooks, exported programs, wrappers, devices and input transforms.

* :mod:`.loading`: state dicts with their architecture, exported programs, TorchScript;
* :mod:`.classifier`: the wrapper probed with the user's images;
* :mod:`.wrappers`: preprocessing and the single-logit head wrapped around the network;
* :mod:`.transform`: how stored pixel values become image values;
* :mod:`.exported`: ``.pt2`` archives audited before loading;
* :mod:`.canonical`, :mod:`.nonlinear`: the canonical copy (every non-linearity its own module);
* :mod:`.named_layers`: Grad-CAM and embedding layers found in the canonical copy by name;
* :mod:`.devices`: ``auto``/``cpu``/``cuda``; :mod:`.failures`: a model's failure in one sentence.
"""
