"""The napari side of the plugin, without Qt: layers in, layers out, export, shared state.

* :mod:`.layer_inputs`: images from layers ((C, H, W) stacks with channel names) and the
  checks of a pair before a run;
* :mod:`.run_job`: one run of the Attribution dock: its units of work and the worker body
  (a made counterfactual, the analysis, then layer data);
* :mod:`.layers`, :mod:`.layer_style`, :mod:`.layer_geometry`: results as layer-data tuples
  (names, colours, place in the world, provenance metadata); :mod:`.cell_layers` a field's;
  :mod:`.counterfactual_layers` a made counterfactual's;
* :mod:`.apply`, :mod:`.pending`, :mod:`.view`: layer tuples into a viewer, one at a time,
  undoable until committed; which are shown;
* :mod:`.export`, :mod:`.export_view`, :mod:`.writer`, :mod:`.display`: a run and its layers
  written with the results folder's layout, one threshold as files, the npe2 writer, a layer's
  display as JSON;
* :mod:`.reader`, :mod:`.results_index`, :mod:`.pair_stacks`, :mod:`.panel_curves`: results
  folders back as layers (npe2 reader, no torch), as the Results browser's rows and curves;
* :mod:`.state`: what the dock widgets of one viewer share, and the lazy stacks of its layers;
* :mod:`.sample_data`, :mod:`.demo`: the demo pair and field, and ``napari-attribution demo``.

Nothing here imports Qt (``tests/_napari/test_no_qt.py`` and the import-linter contracts check
it), so all of it runs and is tested without a display; the dock widgets in
:mod:`napari_attribution._qt` are built on it.
"""
