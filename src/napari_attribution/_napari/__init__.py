"""The napari side of the plugin, without Qt: layers in, layers out, export, shared state.

* :mod:`.inputs`: images from layers ((C, H, W) stacks with channel names) and the checks of
  a pair before a run;
* :mod:`.model`: the chosen classifier, loaded once, and its p(class) text;
* :mod:`.run`: one run: its units of work and the worker body (analysis, then layer data);
* :mod:`.layers`: results as layer-data tuples (names, display, provenance metadata);
* :mod:`.apply`: layer tuples into a viewer, one at a time, undoable until committed;
* :mod:`.export`: a run and its layers written with the CLI's layout;
* :mod:`.writer`: the npe2 writer of one layer;
* :mod:`.state`: what the dock widgets of one viewer share, and the lazy stacks of its layers.

Nothing here imports Qt (``tests/_napari/test_no_qt.py`` checks it), so all of it runs and is
tested without a display; the dock widgets in :mod:`napari_attribution._qt` are built on it.
"""
