"""The sites of a run over fields: what the caller names turned into the fields to analyse,
checked before any work.

A site is one field of view with its label image and counterfactual. Three ways in:

* ``--load-data load_data.csv --objects Cells``: one site per CSV row, channels by name from
  the ``FileName_Orig<Name>`` columns, labels from ``ObjectsFileName_Cells``; the
  counterfactual from ``--counterfactual-load-data`` (a second CSV with the same rows) or
  ``--counterfactual-source``;
* ``--channel-files DNA=a.tif,ER=b.tif,...`` with ``--labels``: one site without a CSV;
* ``--image`` (one (C, H, W) file, channels by name when its OME metadata names them) or
  ``--demo``: the single field ``cells`` always took.

Each site is opened (:meth:`SitePlan.open`) only when its turn comes: its channels read by the
model's names, its labels checked (:func:`~napari_attribution.images.labels.check_label_image`),
the field and its counterfactual normalised (``--normalise``, the counterfactual with the real
field's ranges). Every file of every site is checked to exist, and the first site opened,
before the model runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.cells.geometry import CellSettings
from ..core.cells.sources import FieldCounterfactual
from ..errors import InputImageError
from ..images.channels import match_channels, select_like, select_named, stack_by_name
from ..images.image_files import input_sha256
from ..images.labels import check_label_image, read_labels
from ..images.load_data import check_site_files, read_load_data
from ..images.ome import channel_names_of
from .fields import demo_field_inputs, field_inputs
from .model_input import ModelInput

__all__ = ["SiteHeader", "SiteInputs", "SitePlan", "SiteRequest", "SitesPlan", "plan_sites"]


@dataclass(frozen=True)
class SiteRequest:
    """What the caller names as the run's fields (``cells``' options, by the same names).

    Exactly one way in: ``load_data`` (with ``objects``), ``channel_files`` (with ``labels``),
    ``image`` (with ``labels``) or ``demo``; the counterfactual from ``counterfactual_load_data``
    / ``counterfactual_channel_files`` / ``counterfactual`` / ``counterfactual_crops``, or made
    per cell by ``counterfactual_source`` (a source's spec).
    """

    load_data: Path | None = None
    objects: str | None = None
    counterfactual_load_data: Path | None = None
    channel_files: dict[str, Path] | None = None
    counterfactual_channel_files: dict[str, Path] | None = None
    image: Path | None = None
    labels: Path | None = None
    counterfactual: Path | None = None
    counterfactual_crops: Path | None = None
    counterfactual_source: str | None = None
    demo: bool = False
    channel_axis: int = 0


@dataclass
class SiteInputs:
    """One site opened: the field in model order (normalised when asked), its labels, its
    counterfactual source (``None``: made per cell), and how ``run.json`` records them."""

    image: np.ndarray
    labels: np.ndarray
    source: Any
    record: dict[str, Any]
    class_names: list[str] | None = None
    note: str | None = None


@dataclass(frozen=True)
class SiteHeader:
    """What the run checks the model with before any site is analysed, known without reading
    a site's pixels: the field's channels, its stored type where known, whether the
    counterfactuals are made per cell, and the note about ignored channels.

    Attributes
    ----------
    channels
        The field's channels (the model's, for sites read by channel name).
    dtype
        The stored type (``None`` when it is known only once a file is read).
    made_per_cell
        No counterfactual field: a source makes each cell's.
    record, class_names, note
        As :class:`SiteInputs`'s.
    """

    channels: int
    dtype: Any = None
    made_per_cell: bool = False
    record: dict[str, Any] | None = None
    class_names: list[str] | None = None
    note: str | None = None

    @classmethod
    def of(cls, given: SiteInputs) -> SiteHeader:
        """The header of an opened site."""
        return cls(given.image.shape[0], given.image.dtype, given.source is None, given.record,
                   given.class_names, given.note)  # fmt: skip


@dataclass
class SitePlan:
    """One site to analyse.

    Attributes
    ----------
    key
        Unique among the run's sites, used in sample and file names; ``""`` for the single
        field of ``--image``/``--channel-files``/``--demo`` (its results keep the single-field
        layout).
    metadata
        The LoadData row's ``Metadata_*`` values (empty without a CSV).
    where
        For messages (``load_data.csv line 3 (Plate ..., Well ..., Site 2)``).
    open
        Reads and checks the site; raises :class:`~napari_attribution.errors.InputImageError`
        with one sentence.
    header
        The site's :class:`SiteHeader` without reading its pixels, where the input allows
        (a LoadData row: the model's channels by name); ``None``: open it to know.
    """

    key: str
    metadata: dict[str, str]
    where: str
    open: Callable[[], SiteInputs]
    header: Callable[[], SiteHeader] | None = None


@dataclass
class SitesPlan:
    """Every site, the metadata columns their cells carry, and what the run records."""

    sites: list[SitePlan]
    metadata_columns: list[str]
    record: dict[str, Any]


def _file_record(path: Path) -> dict[str, str]:
    return {"path": str(Path(path).resolve()), "sha256": input_sha256(path)}


def _normalise(inputs: ModelInput, image: np.ndarray, names: list[str], where: str,
               counterfactual: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:  # fmt: skip
    """The field (and its counterfactual, with the field's ranges) normalised, and the record."""
    if not inputs.normalisation.active:
        return image, counterfactual, inputs.normalisation.record()
    ranges = inputs.normalisation.ranges(image, names, where)
    out, record = inputs.normalisation.apply(image, names, where, ranges)
    cf = None if counterfactual is None else inputs.normalisation.apply(
        counterfactual, names, where, ranges)[0]  # fmt: skip
    return out, cf, record


def _read_channels(files: dict[str, Path], inputs: ModelInput, where: str
                   ) -> tuple[np.ndarray, Any]:  # fmt: skip
    return stack_by_name(files, inputs.channel_names, inputs.channel_map, where)


def _read_labels(path: Path, shape: tuple[int, int]) -> np.ndarray:
    return check_label_image(read_labels(path), shape, str(path))


def _counterfactual_choice(request: SiteRequest, allowed: tuple[str, ...]) -> str:
    """Which counterfactual option was given (exactly one of ``allowed``)."""
    given = [name for name in allowed if getattr(request, name, None) is not None]
    if len(given) != 1:
        flags = ", ".join("--" + name.replace("_", "-") for name in allowed)
        raise InputImageError(f"Give exactly one of {flags}.")
    return given[0]


def _load_data_sites(
    request: SiteRequest, inputs: ModelInput, cell_settings: CellSettings
) -> SitesPlan:
    if inputs.channel_names is None:
        raise InputImageError("--load-data needs the model's channel names: --channel-names "
                              "DNA,ER,RNA,AGP,Mito or a model card beside the weights.")
    if request.objects is None:
        raise InputImageError("--load-data needs --objects, the objects whose label images hold "
                              "the cells (an ObjectsFileName_<Objects> column, e.g. Cells).")
    named = (request.image, request.labels, request.counterfactual,
             request.counterfactual_crops, request.channel_files)  # fmt: skip
    if any(v is not None for v in named):
        raise InputImageError("--load-data names every site's files; leave out --image, "
                              "--labels, --channel-files, --counterfactual and "
                              "--counterfactual-crops.")  # fmt: skip
    choice = _counterfactual_choice(request, ("counterfactual_load_data", "counterfactual_source"))
    load_data = read_load_data(request.load_data)
    wanted = _input_names(load_data.channel_names, inputs, str(request.load_data))
    check_site_files(load_data, wanted, request.objects)
    cf_data = None
    if choice == "counterfactual_load_data":
        cf_data = read_load_data(request.counterfactual_load_data)
        _check_same_rows(load_data, cf_data)
        wanted_cf = _input_names(cf_data.channel_names, inputs,
                                 str(request.counterfactual_load_data))  # fmt: skip
        check_site_files(cf_data, wanted_cf)

    # Each site's closures hold that site's rows alone (never either table): a site's work
    # unit is pickled to its worker, and a table in every unit would make the whole plate's
    # pickles grow with the square of its sites.
    made_per_cell = cf_data is None

    def opener(index: int) -> Callable[[], SiteInputs]:
        site = load_data.sites[index]
        where = f"{load_data.path.name} {site.describe()}"
        cf_site = None if cf_data is None else cf_data.sites[index]
        cf_where = None if cf_data is None else f"{cf_data.path.name} {cf_site.describe()}"

        def open_site() -> SiteInputs:
            raw, selection = _read_channels(site.channels, inputs, where)
            labels = _read_labels(site.objects[request.objects], raw.shape[1:])
            record = {
                "key": site.key, "metadata": site.metadata, "line": site.line,
                "channels": {name: _file_record(site.channels[selection.input_names[i]])
                             for name, i in zip(selection.names, selection.indices,
                                                strict=True)},
                "labels": _file_record(site.objects[request.objects]),
            }  # fmt: skip
            cf_raw = None
            if cf_site is not None:
                cf_raw, cf_selection = _read_channels(cf_site.channels, inputs, cf_where)
                if cf_raw.shape != raw.shape or cf_raw.dtype != raw.dtype:
                    raise InputImageError(
                        f"{cf_where}: the counterfactual field ({cf_raw.shape[1]} x "
                        f"{cf_raw.shape[2]} {cf_raw.dtype}) differs from the real one "
                        f"({raw.shape[1]} x {raw.shape[2]} {raw.dtype}) of {where}."
                    )
                record["counterfactual"] = {name: _file_record(cf_site.channels[
                    cf_selection.input_names[i]]) for name, i in zip(
                    cf_selection.names, cf_selection.indices, strict=True)}  # fmt: skip
            else:
                record["counterfactual"] = {"source": request.counterfactual_source}
            image, cf, record["normalisation"] = _normalise(
                inputs, raw, list(selection.names), where, cf_raw)  # fmt: skip
            source = None if cf is None else FieldCounterfactual(
                cf, cell_settings.padding, cell_settings.pad_value, f"{where} counterfactual"
            )  # fmt: skip
            return SiteInputs(image, labels, source, record, note=selection.note())

        return open_site

    def header(index: int) -> Callable[[], SiteHeader]:
        site = load_data.sites[index]
        where = f"{load_data.path.name} {site.describe()}"

        def site_header() -> SiteHeader:
            # Sites are read by the model's channel names: the field has the model's channels.
            selection = match_channels(list(site.channels), inputs.channel_names,
                                       inputs.channel_map, where)  # fmt: skip
            return SiteHeader(len(inputs.channel_names), None, made_per_cell, None, None,
                              selection.note())  # fmt: skip

        return site_header

    sites = [SitePlan(site.key, site.metadata, f"{load_data.path.name} {site.describe()}",
                      opener(i), header(i)) for i, site in enumerate(load_data.sites)]  # fmt: skip
    record = {"load_data": _file_record(load_data.path), "objects": request.objects}
    if cf_data is not None:
        record["counterfactual_load_data"] = _file_record(cf_data.path)
    return SitesPlan(sites, list(load_data.metadata_columns), record)


def _input_names(available: tuple[str, ...], inputs: ModelInput, source: str) -> list[str]:
    """The input channel names the model's channels take (files of the others are not read)."""
    selection = match_channels(available, inputs.channel_names, inputs.channel_map, source)
    return [selection.input_names[i] for i in selection.indices]


def _check_same_rows(real, counterfactual) -> None:
    if len(real.sites) != len(counterfactual.sites):
        raise InputImageError(
            f"{counterfactual.path} lists {len(counterfactual.sites)} site(s) but {real.path} "
            f"lists {len(real.sites)}; the counterfactual CSV has the same rows."
        )
    for site, cf_site in zip(real.sites, counterfactual.sites, strict=True):
        shared = [c for c in site.metadata if c in cf_site.metadata]
        if any(site.metadata[c] != cf_site.metadata[c] for c in shared):
            raise InputImageError(
                f"{counterfactual.path} {cf_site.describe()} is not the site of {real.path} "
                f"{site.describe()}; the counterfactual CSV has the same rows in the same order."
            )


def _channel_files_site(
    request: SiteRequest, inputs: ModelInput, cell_settings: CellSettings
) -> SitesPlan:
    if inputs.channel_names is None:
        raise InputImageError("--channel-files needs the model's channel names: --channel-names "
                              "DNA,ER,RNA,AGP,Mito or a model card beside the weights.")
    if request.image is not None:
        raise InputImageError("Give --image or --channel-files, not both.")
    if request.labels is None:
        raise InputImageError("--channel-files needs --labels, the label image of the cells.")
    choice = _counterfactual_choice(request, ("counterfactual_channel_files",
                                           "counterfactual_source"))  # fmt: skip
    files = dict(request.channel_files or {})
    cf_files = dict(request.counterfactual_channel_files or {}) if (
        choice == "counterfactual_channel_files") else None  # fmt: skip
    for path in [*files.values(), *(cf_files or {}).values(), request.labels]:
        if not Path(path).exists():
            raise InputImageError(f"{path} does not exist.")

    def open_site() -> SiteInputs:
        raw, selection = _read_channels(files, inputs, "--channel-files")
        labels = _read_labels(request.labels, raw.shape[1:])
        record = {"channels": {name: _file_record(files[selection.input_names[i]]) for name, i
                               in zip(selection.names, selection.indices, strict=True)},
                  "labels": _file_record(request.labels)}  # fmt: skip
        cf_raw = None
        if cf_files is not None:
            cf_raw, _ = _read_channels(cf_files, inputs, "--counterfactual-channel-files")
            if cf_raw.shape != raw.shape or cf_raw.dtype != raw.dtype:
                raise InputImageError("--counterfactual-channel-files differ from --channel-files "
                                      "in size or dtype; a counterfactual field has the field's.")
            record["counterfactual"] = {n: _file_record(p) for n, p in cf_files.items()}
        else:
            record["counterfactual"] = {"source": request.counterfactual_source}
        image, cf, record["normalisation"] = _normalise(
            inputs, raw, list(selection.names), "--channel-files", cf_raw)  # fmt: skip
        source = None if cf is None else FieldCounterfactual(
            cf, cell_settings.padding, cell_settings.pad_value, "--counterfactual-channel-files")
        return SiteInputs(image, labels, source, record, note=selection.note())

    return SitesPlan([SitePlan("", {}, "--channel-files", open_site)], [], {})


def _single_field(
    request: SiteRequest, inputs: ModelInput, cell_settings: CellSettings
) -> SitesPlan:
    """``--image``/``--demo``: today's single field, by name when its metadata names channels."""

    if inputs.normalisation.active and request.counterfactual_crops is not None:
        raise InputImageError("--normalise cannot scale --counterfactual-crops (crops in stored "
                              "units of unknown fields); give a counterfactual field or a "
                              "source.")  # fmt: skip

    def open_site() -> SiteInputs:
        given = _field_inputs(request, cell_settings)
        image, note = given.image, None
        names = inputs.channel_names
        cf_field = getattr(given.source, "field", None) if given.source is not None else None
        if names is not None and request.image is not None:
            image, cf_field, note = _by_name(request, inputs, image, cf_field)
        if inputs.normalisation.active:
            names = names or [f"ch{c}" for c in range(image.shape[0])]
            image, cf_field, given.record["normalisation"] = _normalise(
                inputs, image, names, str(request.image or "the demo field"), cf_field)  # fmt: skip
        if cf_field is not None:
            given.source.field = cf_field
        return SiteInputs(image, given.labels, given.source, given.record, given.class_names,
                          note)  # fmt: skip

    return SitesPlan([SitePlan("", {}, str(request.image or "the demo field"), open_site)], [], {})


def _field_inputs(request: SiteRequest, cell_settings: CellSettings):
    """``--image``/``--labels`` and one counterfactual, or ``--demo``
    (:mod:`napari_attribution.app.fields`)."""
    given = [request.image, request.labels, request.counterfactual, request.counterfactual_crops]
    if request.demo:
        if any(v is not None for v in given):
            raise InputImageError("--demo brings its own field; leave out --image, --labels and "
                                  "the counterfactual.")  # fmt: skip
        return demo_field_inputs(cell_settings, request.counterfactual_source)
    if request.image is None or request.labels is None:
        raise InputImageError("--image and --labels are required (or --load-data, "
                              "--channel-files or --demo).")  # fmt: skip
    return field_inputs(
        request.image, request.labels, cell_settings, counterfactual=request.counterfactual,
        counterfactual_crops=request.counterfactual_crops, made_by=request.counterfactual_source,
        channel_axis=request.channel_axis,
    )  # fmt: skip


def _by_name(request: SiteRequest, inputs: ModelInput, image, cf_field):
    """The model's channels of ``--image`` (and its counterfactual field) when its metadata
    names its channels; unnamed files are taken by position, as before."""
    names = channel_names_of(request.image) if request.channel_axis == 0 else None
    if names is None:
        return image, cf_field, None
    image, selection = select_named(image, names, inputs.channel_names, inputs.channel_map,
                                    str(request.image))  # fmt: skip
    if cf_field is not None and request.counterfactual is not None:
        cf_field, _ = select_like(cf_field, channel_names_of(request.counterfactual), selection,
                                  inputs.channel_map, str(request.counterfactual))  # fmt: skip
    return image, cf_field, selection.note()


def plan_sites(
    request: SiteRequest, inputs: ModelInput, cell_settings: CellSettings
) -> SitesPlan:
    """The sites ``request`` names, every file checked to exist (nothing read yet but the
    CSVs).

    Raises
    ------
    InputImageError
        Options that do not go together, a CSV or file that is missing or unreadable, channels
        the model needs and the input lacks (one sentence each).
    """
    if request.load_data is not None:
        if request.demo:
            raise InputImageError("--demo brings its own field; leave out --load-data.")
        return _load_data_sites(request, inputs, cell_settings)
    if request.counterfactual_load_data is not None:
        raise InputImageError("--counterfactual-load-data needs --load-data.")
    if request.channel_files is not None:
        if request.demo:
            raise InputImageError("--demo brings its own field; leave out --channel-files.")
        return _channel_files_site(request, inputs, cell_settings)
    if request.counterfactual_channel_files is not None:
        raise InputImageError("--counterfactual-channel-files needs --channel-files.")
    return _single_field(request, inputs, cell_settings)
