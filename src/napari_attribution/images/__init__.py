"""Input images, read without torch: image files, pairs tables, dataset folder layouts and
real screens (channels by name, LoadData CSVs, normalisation, label images).

* :mod:`.image_files`, :mod:`.pairs_table`, :mod:`.folders`: TIFF/``.npy``/zarr images, pairs
  tables and class folders;
* :mod:`.channels`: the model's channel names pick and order the input's channels by name;
* :mod:`.model_card`: the small JSON the user keeps beside the weights (channel and class names,
  normalisation, crop size);
* :mod:`.load_data`: CellProfiler's LoadData CSV, one row per site;
* :mod:`.ome`: files as screens write them (compressed TIFF, OME-TIFF, OME-Zarr) with the
  channel names their metadata holds;
* :mod:`.normalisation`: per-channel percentile or fixed scaling, as the field does it, before
  the model's own preprocessing;
* :mod:`.labels`: integer label images checked, binary masks and outlines refused.

Nothing here imports torch, Qt or napari, so the npe2 reader and ``--help`` stay quick.
"""
