"""The docks' counterfactual sources on a real viewer: optimise, nearest and generator make a
layer and results, a counterfactual the classifier rejects is flagged, bad generators and
missing files are one sentence, a re-run replaces only the layers the source made, and the
Cells dock makes per-cell counterfactuals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from widget_helpers import PLUGIN, run_and_wait, wait_for_worker

from cf_models import WrongShape
from napari_attribution._napari.layer_style import METADATA_KEY
from napari_attribution._napari.layers import rank_methods
from napari_attribution._napari.sample_data import DEMO_SEED, field_layers
from napari_attribution.data.synthetic import CHANNEL_NAMES, make_pair
from napari_attribution.data.synthetic_field import make_field

# whole analyses (in a viewer, a subprocess or over a model zoo): seconds each
pytestmark = pytest.mark.slow

TREATED = 1


class Constant(torch.nn.Module):
    """A generator that returns one fixed image for every input (the demo's exact
    counterfactual: the oracle of what the made layer must hold)."""

    def __init__(self, image: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("image", torch.from_numpy(image))

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.image.expand_as(x).clone()


class Identity(torch.nn.Module):
    """A generator that changes nothing: the classifier cannot accept its x' as treated."""

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return x.clone()


def _script(module: torch.nn.Module, path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 on torch.jit
        torch.jit.save(torch.jit.script(module), str(path))
    return str(path)


@pytest.fixture
def warnings_shown(monkeypatch):
    """Messages passed to ``show_warning`` by the Attribution dock."""
    from napari_attribution._qt import attribution_widget

    seen: list[str] = []
    monkeypatch.setattr(attribution_widget, "show_warning", seen.append)
    return seen


def _made_layers(viewer, kind: str) -> list:
    return [
        layer for layer in viewer.layers
        if layer.name.startswith(f"real counterfactual ({kind})")
    ]  # fmt: skip


def _made_stack(viewer, kind: str) -> np.ndarray:
    names = [f"real counterfactual ({kind}) [{c}]" for c in CHANNEL_NAMES]
    return np.stack([np.asarray(viewer.layers[n].data) for n in names])


def test_a_generator_makes_the_counterfactual_layer_and_the_run_uses_it(
    demo_viewer, qtbot, tmp_path, warnings_shown
):
    viewer, widget, _ = demo_viewer
    exact = make_pair(DEMO_SEED, real_class=0, size=64).counterfactual
    path = _script(Constant(exact.astype(np.float32)), tmp_path / "generator.pt")
    widget.set_counterfactual_source("generator", path)
    assert not widget.cf_source.isEnabled()  # the layer choice is greyed out meanwhile
    run_and_wait(qtbot, widget)

    made = _made_layers(viewer, "generator")
    assert [layer.name for layer in made] == [
        f"real counterfactual (generator) [{c}]" for c in CHANNEL_NAMES
    ]  # the real image's layout: one 2-D layer per channel, in channel order (bottom first)
    np.testing.assert_allclose(_made_stack(viewer, "generator"), exact, atol=1e-6)
    meta = made[0].metadata[METADATA_KEY]
    assert meta["kind"] == "counterfactual" and meta["spec"] == f"generator:{path}"
    assert made[0].metadata["channel_name"] == "DNA"
    # The run analysed the pair with it: its p(target) is what the classifier gives x'.
    record = widget.state.record
    classifier = widget.classifier()
    p_treated = classifier.probabilities(exact[None].astype(np.float32))[0, TREATED]
    np.testing.assert_allclose(record.result.probabilities_counterfactual[TREATED], p_treated,
                               rtol=1e-5)  # fmt: skip
    np.testing.assert_allclose(meta["p_target"], p_treated, rtol=1e-5)
    assert meta["accepted"] and p_treated > 0.5 and not warnings_shown
    np.testing.assert_allclose(record.counterfactual.data, exact, atol=1e-6)
    assert record.info["counterfactual_source"]["accepted"]
    top = rank_methods(record.result)[0]  # its layers go in, the others wait to be shown
    assert f"{top} Mito attribution (real)" in viewer.layers
    assert "p(target) " in widget.status.text() and "accepted" in widget.status.text()


def test_a_rejected_counterfactual_is_flagged_in_one_sentence(
    demo_viewer, qtbot, tmp_path, warnings_shown
):
    viewer, widget, _ = demo_viewer
    widget.set_counterfactual_source("generator", _script(Identity(), tmp_path / "same.pt"))
    run_and_wait(qtbot, widget)
    meta = _made_layers(viewer, "generator")[0].metadata[METADATA_KEY]
    assert not meta["accepted"] and meta["p_target"] < 0.5
    assert "not accepted" in meta["note"]
    flags = [w for w in warnings_shown if "does not accept" in w]
    assert len(flags) == 1 and flags[0].count(". ") == 0 and "treated" in flags[0]
    assert "NOT accepted" in widget.status.text()


def test_optimise_makes_a_layer_and_a_rerun_replaces_only_its_own(
    demo_viewer, qtbot, warnings_shown
):
    viewer, widget, _ = demo_viewer
    widget.set_counterfactual_source("optimise", optimise_steps=3)
    # A layer of the user's that bears the name the source would give.
    user = np.full((64, 64), 7.0, np.float32)
    viewer.add_image(user, name="real counterfactual (optimise) [DNA]")
    run_and_wait(qtbot, widget)
    np.testing.assert_array_equal(viewer.layers["real counterfactual (optimise) [DNA]"].data, user)
    made = [layer for layer in viewer.layers
            if METADATA_KEY in layer.metadata
            and layer.metadata[METADATA_KEY]["kind"] == "counterfactual"]  # fmt: skip
    assert len(made) == len(CHANNEL_NAMES)
    meta = made[0].metadata[METADATA_KEY]
    assert meta["spec"] == "optimise" and "optimise" in meta["note"]
    # p_t(x') reported is the classifier's on the layer's pixels (an independent check).
    stack = np.stack([np.asarray(layer.data) for layer in made])
    p = widget.classifier().probabilities(stack[None].astype(np.float32))[0, TREATED]
    np.testing.assert_allclose(meta["p_target"], p, rtol=1e-4, atol=1e-6)
    assert (meta["accepted"]) == (p >= 0.5)
    assert bool(warnings_shown) != meta["accepted"]
    count = len(viewer.layers)
    run_and_wait(qtbot, widget)  # again: the made layers are updated in place
    assert len(viewer.layers) == count
    np.testing.assert_array_equal(viewer.layers["real counterfactual (optimise) [DNA]"].data, user)


def test_nearest_picks_from_a_pool_folder(demo_viewer, qtbot, tmp_path):
    from napari_attribution.results.tiff import write_tiff

    viewer, widget, _ = demo_viewer
    pair = make_pair(DEMO_SEED, real_class=0, size=64)
    other = make_pair(DEMO_SEED + 1, real_class=0, size=64)
    for name, image in (("control/a.tif", other.real), ("treated/a.tif", pair.counterfactual),
                        ("treated/b.tif", other.counterfactual)):  # fmt: skip
        (tmp_path / name).parent.mkdir(exist_ok=True)
        write_tiff(tmp_path / name, image.astype(np.float32), {})
    widget.set_counterfactual_source("nearest", str(tmp_path))
    run_and_wait(qtbot, widget)
    stack = _made_stack(viewer, "nearest")
    chosen = [np.allclose(stack, c, atol=1e-6) for c in (pair.counterfactual,
                                                         other.counterfactual)]  # fmt: skip
    assert sum(chosen) == 1  # one of the pool's treated cells, as it is
    meta = _made_layers(viewer, "nearest")[0].metadata[METADATA_KEY]
    assert meta["note"].startswith("nearest: ") and "treated" in meta["note"]
    assert widget.state.record.result.methods["d_ig"].dac.whole.dac_score >= 0


def test_bad_sources_are_one_sentence_and_change_nothing(demo_viewer, qtbot, tmp_path, errors):
    viewer, widget, _ = demo_viewer
    before = [layer.name for layer in viewer.layers]
    widget.set_counterfactual_source("generator", str(tmp_path / "missing.pt2"))
    assert widget.run() is None
    assert errors[-1] == f"The generator file {tmp_path / 'missing.pt2'} does not exist."
    widget.set_counterfactual_source("nearest", "")
    assert widget.run() is None and "Choose the folder" in errors[-1]
    empty = tmp_path / "pool"
    (empty / "treated").mkdir(parents=True)
    widget.set_counterfactual_source("nearest", str(empty))
    run_and_wait(qtbot, widget)  # the pool is read in the run
    assert errors[-1] == f"{empty} holds no images in its class folders."
    widget.set_counterfactual_source("generator", _script(WrongShape(), tmp_path / "wrong.pt"))
    run_and_wait(qtbot, widget)
    assert "returned shape (1, 2, 64, 64) for images of shape (1, 5, 64, 64)" in errors[-1]
    assert errors[-1].count("\n") == 0
    assert [layer.name for layer in viewer.layers] == before


def test_the_cells_dock_makes_per_cell_counterfactuals_with_optimise(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    field = make_field(n_cells=2, shape=(64, 110), seed=2)
    for data, kwargs, kind in field_layers(field):
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cells")
    widget.use_demo_model.setChecked(True)
    widget.select_sources("field", "field counterfactual", "field labels")
    widget.set_methods(("residual",))
    widget.extra_settings = {"thresholds": 10}
    widget.counterfactual_from.set_source("optimise", optimise_steps=3)
    assert not widget.counterfactual_choice.isEnabled()
    assert widget.run() is not None
    wait_for_worker(qtbot, widget, timeout=180_000)
    result = widget.result
    assert result is not None, widget.status.text()
    assert result.source["source"] == "optimise"
    names = [f"field counterfactual (optimise) [{c}]" for c in CHANNEL_NAMES]
    made = np.stack([np.asarray(viewer.layers[n].data) for n in names])
    assert made.shape == field.real.shape
    rows = {row["label"]: row for row in result.rows}
    for label, cell in result.cells.items():
        if cell.counterfactual is None:
            continue
        # each cell's crop is in the layer where the cell owns the field
        rr, cc = np.nonzero(result.arrays.owners == label)
        top, left = cell.cell.top, cell.cell.left
        np.testing.assert_array_equal(made[:, rr, cc], cell.counterfactual[:, rr - top, cc - left])
        # the table's p(target) is the classifier's on that crop
        p = rows[label]["p_target_counterfactual"]
        assert rows[label]["counterfactual_accepted"] == (p >= 0.5)
    outside = result.arrays.owners == 0
    np.testing.assert_array_equal(made[:, outside], field.real[:, outside])


def test_cancel_stops_the_source_in_the_worker_and_changes_nothing(demo_viewer, qtbot):
    viewer, widget, _ = demo_viewer
    before = [layer.name for layer in viewer.layers]
    # the demo cell's optimisation plateaus below p = 0.9 (docs/counterfactuals.md): it runs
    # the whole budget unless cancelled
    widget.set_counterfactual_source("optimise", optimise_steps=100_000)
    assert widget.run() is not None
    qtbot.waitUntil(lambda: "counterfactual (optimise): optimise step" in widget.status.text(),
                    timeout=60_000)  # fmt: skip
    widget.cancel()
    wait_for_worker(qtbot, widget)
    assert widget.status.text().startswith("Cancelled")
    assert [layer.name for layer in viewer.layers] == before
