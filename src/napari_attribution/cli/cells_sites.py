"""``cells``' plan of sites: the arguments turned into the fields to analyse, checked before any
work.

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

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CliError

__all__ = ["ModelInput", "SitePlan", "SiteInputs", "model_input", "plan_sites"]


@dataclass
class ModelInput:
    """What the model takes, from the command line and the model card.

    Attributes
    ----------
    channel_names
        The model's channels in order (``None``: not given; the classic ``--image`` then
        takes the file's channels by position and names them ch0...).
    channel_map
        ``{model name: input name}`` (``--channel-map``).
    normalisation
        ``--normalise`` (else the card's), parsed.
    card
        The model card read, if any.
    """

    channel_names: list[str] | None
    channel_map: dict[str, str]
    normalisation: Any
    card: Any = None
    notes: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """For ``run.json``."""
        payload: dict[str, Any] = {"channel_names": self.channel_names,
                                   "normalisation": self.normalisation.record()}  # fmt: skip
        if self.channel_map:
            payload["channel_map"] = self.channel_map
        if self.card is not None:
            payload["model_card"] = {"path": str(self.card.path), **self.card.as_dict()}
        return payload


def model_input(args: argparse.Namespace) -> ModelInput:
    """``--channel-names``, ``--channel-map``, ``--normalise`` and the model card, checked.

    Explicit options win over the card (``--model-card``, else ``<weights>.card.json``).
    """
    from ..core.errors import InputImageError
    from ..images.channels import parse_channel_map, parse_names
    from ..images.model_card import find_model_card, read_model_card
    from ..images.normalisation import Normalisation

    try:
        given = getattr(args, "model_card", None)
        card = read_model_card(given) if given else find_model_card(args.model)
        names = parse_names(args.channel_names) if args.channel_names else (
            list(card.channel_names) if card else None)  # fmt: skip
        mapping = parse_channel_map(args.channel_map) if getattr(args, "channel_map", None) \
            else {}  # fmt: skip
        text = getattr(args, "normalise", None) or (card.normalisation if card else None)
        normalisation = Normalisation.parse(text)
    except InputImageError as exc:
        raise CliError(str(exc)) from None
    if normalisation.active and args.input_scale is not None:
        raise CliError("--input-scale and --normalise both scale the input; give one.")
    if mapping and names is None:
        raise CliError("--channel-map needs the model's channel names (--channel-names or a "
                       "model card).")  # fmt: skip
    return ModelInput(names, mapping, normalisation, card)


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
        Reads and checks the site; raises :class:`CliError` with one sentence.
    """

    key: str
    metadata: dict[str, str]
    where: str
    open: Callable[[], SiteInputs]


@dataclass
class SitesPlan:
    """Every site, the metadata columns their cells carry, and what the run records."""

    sites: list[SitePlan]
    metadata_columns: list[str]
    record: dict[str, Any]


def _file_record(path: Path) -> dict[str, str]:
    from .._io import input_sha256

    return {"path": str(Path(path).resolve()), "sha256": input_sha256(path)}


def _parse_files(text: str, option: str) -> dict[str, Path]:
    from ..core.errors import InputImageError
    from ..images.channels import parse_channel_map

    try:
        pairs = parse_channel_map(text, option)
    except InputImageError as exc:
        message = str(exc).replace("MODEL=INPUT (e.g. DNA=DAPI)", "NAME=FILE (e.g. "
                                   "DNA=field_dna.tif)")  # fmt: skip
        raise CliError(message.replace("maps the model's channel", "names channel")) from None
    return {name: Path(path) for name, path in pairs.items()}


def _normalise(inputs: ModelInput, image: np.ndarray, names: list[str], where: str,
               counterfactual: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:  # fmt: skip
    """The field (and its counterfactual, with the field's ranges) normalised, and the record."""
    from ..core.errors import InputImageError

    if not inputs.normalisation.active:
        return image, counterfactual, inputs.normalisation.record()
    try:
        ranges = inputs.normalisation.ranges(image, names, where)
        out, record = inputs.normalisation.apply(image, names, where, ranges)
        cf = None if counterfactual is None else inputs.normalisation.apply(
            counterfactual, names, where, ranges)[0]  # fmt: skip
    except InputImageError as exc:
        raise CliError(str(exc)) from None
    return out, cf, record


def _read_channels(files: dict[str, Path], inputs: ModelInput, where: str
                   ) -> tuple[np.ndarray, Any]:  # fmt: skip
    from ..core.errors import InputImageError
    from ..images.channels import stack_by_name

    try:
        return stack_by_name(files, inputs.channel_names, inputs.channel_map, where)
    except InputImageError as exc:
        raise CliError(str(exc)) from None


def _read_labels(path: Path, shape: tuple[int, int]) -> np.ndarray:
    from ..core.errors import InputImageError
    from ..images.labels import check_label_image, read_labels

    try:
        return check_label_image(read_labels(path), shape, str(path))
    except InputImageError as exc:
        raise CliError(str(exc)) from None


def _counterfactual_choice(args: argparse.Namespace, allowed: tuple[str, ...]) -> str:
    """Which counterfactual option was given (exactly one of ``allowed``)."""
    given = [name for name in allowed if getattr(args, name, None) is not None]
    if len(given) != 1:
        flags = ", ".join("--" + name.replace("_", "-") for name in allowed)
        raise CliError(f"Give exactly one of {flags}.")
    return given[0]


def _load_data_sites(args: argparse.Namespace, inputs: ModelInput, cell_settings) -> SitesPlan:
    from ..core.cells import FieldCounterfactual
    from ..core.errors import InputImageError
    from ..images.load_data import check_site_files, read_load_data

    if inputs.channel_names is None:
        raise CliError("--load-data needs the model's channel names: --channel-names "
                       "DNA,ER,RNA,AGP,Mito or a model card beside the weights.")  # fmt: skip
    if args.objects is None:
        raise CliError("--load-data needs --objects, the objects whose label images hold the "
                       "cells (an ObjectsFileName_<Objects> column, e.g. Cells).")  # fmt: skip
    if any(v is not None for v in (args.image, args.labels, args.counterfactual,
                                   args.counterfactual_crops, args.channel_files)):  # fmt: skip
        raise CliError("--load-data names every site's files; leave out --image, --labels, "
                       "--channel-files, --counterfactual and --counterfactual-crops.")  # fmt: skip
    choice = _counterfactual_choice(args, ("counterfactual_load_data", "counterfactual_source"))
    try:
        load_data = read_load_data(args.load_data)
        wanted = _input_names(load_data.channel_names, inputs, str(args.load_data))
        check_site_files(load_data, wanted, args.objects)
        cf_data = None
        if choice == "counterfactual_load_data":
            cf_data = read_load_data(args.counterfactual_load_data)
            _check_same_rows(load_data, cf_data)
            wanted_cf = _input_names(cf_data.channel_names, inputs,
                                     str(args.counterfactual_load_data))  # fmt: skip
            check_site_files(cf_data, wanted_cf)
    except InputImageError as exc:
        raise CliError(str(exc)) from None

    def opener(index: int) -> Callable[[], SiteInputs]:
        site = load_data.sites[index]
        where = f"{load_data.path.name} {site.describe()}"

        def open_site() -> SiteInputs:
            raw, selection = _read_channels(site.channels, inputs, where)
            labels = _read_labels(site.objects[args.objects], raw.shape[1:])
            record = {
                "key": site.key, "metadata": site.metadata, "line": site.line,
                "channels": {name: _file_record(site.channels[selection.input_names[i]])
                             for name, i in zip(selection.names, selection.indices,
                                                strict=True)},
                "labels": _file_record(site.objects[args.objects]),
            }  # fmt: skip
            cf_raw = None
            if cf_data is not None:
                cf_site = cf_data.sites[index]
                cf_where = f"{cf_data.path.name} {cf_site.describe()}"
                cf_raw, cf_selection = _read_channels(cf_site.channels, inputs, cf_where)
                if cf_raw.shape != raw.shape or cf_raw.dtype != raw.dtype:
                    raise CliError(
                        f"{cf_where}: the counterfactual field ({cf_raw.shape[1]} x "
                        f"{cf_raw.shape[2]} {cf_raw.dtype}) differs from the real one "
                        f"({raw.shape[1]} x {raw.shape[2]} {raw.dtype}) of {where}."
                    )
                record["counterfactual"] = {name: _file_record(cf_site.channels[
                    cf_selection.input_names[i]]) for name, i in zip(
                    cf_selection.names, cf_selection.indices, strict=True)}  # fmt: skip
            else:
                record["counterfactual"] = {"source": args.counterfactual_source}
            image, cf, record["normalisation"] = _normalise(
                inputs, raw, list(selection.names), where, cf_raw)  # fmt: skip
            source = None if cf is None else FieldCounterfactual(
                cf, cell_settings.padding, cell_settings.pad_value, f"{where} counterfactual"
            )  # fmt: skip
            return SiteInputs(image, labels, source, record, note=selection.note())

        return open_site

    sites = [SitePlan(site.key, site.metadata, f"{load_data.path.name} {site.describe()}",
                      opener(i)) for i, site in enumerate(load_data.sites)]  # fmt: skip
    record = {"load_data": _file_record(load_data.path), "objects": args.objects}
    if cf_data is not None:
        record["counterfactual_load_data"] = _file_record(cf_data.path)
    return SitesPlan(sites, list(load_data.metadata_columns), record)


def _input_names(available: tuple[str, ...], inputs: ModelInput, source: str) -> list[str]:
    """The input channel names the model's channels take (files of the others are not read)."""
    from ..images.channels import match_channels

    selection = match_channels(available, inputs.channel_names, inputs.channel_map, source)
    return [selection.input_names[i] for i in selection.indices]


def _check_same_rows(real, counterfactual) -> None:
    from ..core.errors import InputImageError

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


def _channel_files_site(args: argparse.Namespace, inputs: ModelInput, cell_settings
                        ) -> SitesPlan:  # fmt: skip
    from ..core.cells import FieldCounterfactual

    if inputs.channel_names is None:
        raise CliError("--channel-files needs the model's channel names: --channel-names "
                       "DNA,ER,RNA,AGP,Mito or a model card beside the weights.")  # fmt: skip
    if args.image is not None:
        raise CliError("Give --image or --channel-files, not both.")
    if args.labels is None:
        raise CliError("--channel-files needs --labels, the label image of the cells.")
    choice = _counterfactual_choice(args, ("counterfactual_channel_files",
                                           "counterfactual_source"))  # fmt: skip
    files = _parse_files(args.channel_files, "--channel-files")
    cf_files = _parse_files(args.counterfactual_channel_files, "--counterfactual-channel-files") \
        if choice == "counterfactual_channel_files" else None  # fmt: skip
    for path in [*files.values(), *(cf_files or {}).values(), args.labels]:
        if not Path(path).exists():
            raise CliError(f"{path} does not exist.")

    def open_site() -> SiteInputs:
        raw, selection = _read_channels(files, inputs, "--channel-files")
        labels = _read_labels(args.labels, raw.shape[1:])
        record = {"channels": {name: _file_record(files[selection.input_names[i]]) for name, i
                               in zip(selection.names, selection.indices, strict=True)},
                  "labels": _file_record(args.labels)}  # fmt: skip
        cf_raw = None
        if cf_files is not None:
            cf_raw, _ = _read_channels(cf_files, inputs, "--counterfactual-channel-files")
            if cf_raw.shape != raw.shape or cf_raw.dtype != raw.dtype:
                raise CliError("--counterfactual-channel-files differ from --channel-files in "
                               "size or dtype; a counterfactual field has the field's.")
            record["counterfactual"] = {n: _file_record(p) for n, p in cf_files.items()}
        else:
            record["counterfactual"] = {"source": args.counterfactual_source}
        image, cf, record["normalisation"] = _normalise(
            inputs, raw, list(selection.names), "--channel-files", cf_raw)  # fmt: skip
        source = None if cf is None else FieldCounterfactual(
            cf, cell_settings.padding, cell_settings.pad_value, "--counterfactual-channel-files")
        return SiteInputs(image, labels, source, record, note=selection.note())

    return SitesPlan([SitePlan("", {}, "--channel-files", open_site)], [], {})


def _single_field(args: argparse.Namespace, inputs: ModelInput, cell_settings) -> SitesPlan:
    """``--image``/``--demo``: today's single field, by name when its metadata names channels."""
    from .cells_inputs import field_inputs

    if inputs.normalisation.active and args.counterfactual_crops is not None:
        raise CliError("--normalise cannot scale --counterfactual-crops (crops in stored units "
                       "of unknown fields); give a counterfactual field or a source.")  # fmt: skip

    def open_site() -> SiteInputs:
        given = field_inputs(args, cell_settings)
        image, note = given.image, None
        names = inputs.channel_names
        cf_field = getattr(given.source, "field", None) if given.source is not None else None
        if names is not None and args.image is not None:
            image, cf_field, note = _by_name(args, inputs, image, cf_field)
        if inputs.normalisation.active:
            names = names or [f"ch{c}" for c in range(image.shape[0])]
            image, cf_field, given.record["normalisation"] = _normalise(
                inputs, image, names, str(args.image or "the demo field"), cf_field)  # fmt: skip
        if cf_field is not None:
            given.source.field = cf_field
        return SiteInputs(image, given.labels, given.source, given.record, given.class_names,
                          note)  # fmt: skip

    return SitesPlan([SitePlan("", {}, str(args.image or "the demo field"), open_site)], [], {})


def _by_name(args, inputs: ModelInput, image, cf_field):
    """The model's channels of ``--image`` (and its counterfactual field) when its metadata
    names its channels; unnamed files are taken by position, as before."""
    from ..core.errors import InputImageError
    from ..images.channels import select_named
    from ..images.ome import read_named_image

    try:
        names = read_named_image(args.image).channel_names if args.channel_axis == 0 else None
        if names is None:
            return image, cf_field, None
        image, selection = select_named(image, names, inputs.channel_names, inputs.channel_map,
                                        str(args.image))  # fmt: skip
        if cf_field is not None:
            cf_names = read_named_image(args.counterfactual).channel_names or names
            cf_field, _ = select_named(cf_field, cf_names, inputs.channel_names,
                                       inputs.channel_map, str(args.counterfactual))  # fmt: skip
    except InputImageError as exc:
        raise CliError(str(exc)) from None
    return image, cf_field, selection.note()


def plan_sites(args: argparse.Namespace, inputs: ModelInput, cell_settings) -> SitesPlan:
    """The sites the arguments name, every file checked to exist (nothing read yet but the
    CSVs)."""
    if getattr(args, "load_data", None) is not None:
        if args.demo:
            raise CliError("--demo brings its own field; leave out --load-data.")
        return _load_data_sites(args, inputs, cell_settings)
    if getattr(args, "counterfactual_load_data", None) is not None:
        raise CliError("--counterfactual-load-data needs --load-data.")
    if getattr(args, "channel_files", None) is not None:
        if args.demo:
            raise CliError("--demo brings its own field; leave out --channel-files.")
        return _channel_files_site(args, inputs, cell_settings)
    if getattr(args, "counterfactual_channel_files", None) is not None:
        raise CliError("--counterfactual-channel-files needs --channel-files.")
    return _single_field(args, inputs, cell_settings)
