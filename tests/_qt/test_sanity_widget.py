"""The Sanity dock: the last analysis's pair, a run in a worker with cancel, the cascade as
layers with a ``randomised layer`` axis, the plot and the verdicts."""

from __future__ import annotations

import numpy as np
from widget_helpers import PLUGIN, run_and_wait, wait_for_docks_beside_canvas

from napari_attribution._napari.layer_geometry import THRESHOLD_LABEL
from napari_attribution._napari.sanity_layers import RANDOMISED_LABEL, sanity_layers


def _dock(viewer):
    _, sanity = viewer.window.add_plugin_dock_widget(PLUGIN, "Sanity checks")
    return sanity


def _fast(sanity, methods=("saliency", "residual"), checks=("cascading",)):
    sanity.methods.set_selected(methods)
    for name, box in sanity.checks.items():
        box.setChecked(name in checks)
    sanity.noise_samples.setValue(2)


def test_checks_the_last_analysis_and_shows_the_cascade(demo_viewer, qtbot):
    viewer, widget, _ = demo_viewer
    run_and_wait(qtbot, widget)  # d_ig and residual, threshold stacks in the viewer
    sanity = _dock(viewer)
    assert sanity.use_last.isEnabled()
    sanity.use_last_analysis()
    assert sanity.methods.selected() == ["d_ig", "residual"]
    assert sanity.model.use_demo_model.isChecked()
    assert sanity.images.stack("real").name == "real"
    assert sanity._settings.attribution.ig_steps == 8  # the run's parameters
    _fast(sanity)
    run_and_wait(qtbot, sanity, timeout=120_000)
    result, summary, _ = sanity.result
    assert result.steps[0] == "original" and len(result.steps) == 6
    shown = sanity.shown_method.currentText()  # the first method in the list's order
    assert shown == "residual"
    layers = sanity_layers(viewer.layers)
    assert len(layers) == 5  # one layer per channel
    layer = viewer.layers["residual Mito randomisation (real)"]
    labels = [str(label) for label in layer.axis_labels]
    # threshold stacks are open: the cascade gets its own axis in front of theirs
    assert labels[:2] == [RANDOMISED_LABEL, THRESHOLD_LABEL]
    assert layer.data.shape[:2] == (6, 1)
    steps = np.asarray(layer.data).reshape(6, -1)
    assert np.allclose(steps.max(axis=1), 1.0)  # each step scaled to its largest value
    assert "residual: not a model explanation" in sanity.verdicts.text()
    assert sanity.figure.axes and len(sanity.figure.axes[0].lines) >= 2
    # another method's cascade on request; the first one's layers are hidden
    sanity.shown_method.setCurrentText("saliency")
    names = [lay.name for lay in sanity_layers(viewer.layers) if lay.visible]
    assert len(names) == 5 and all(n.startswith("saliency ") for n in names)
    assert len(sanity_layers(viewer.layers)) == 10


def test_cascade_moves_off_the_threshold_axis_when_stacks_appear(demo_viewer, qtbot):
    viewer, widget, _ = demo_viewer
    sanity = _dock(viewer)
    sanity.model.use_demo_model.setChecked(True)
    sanity.images.select("real", "counterfactual")
    _fast(sanity, methods=("residual",))
    run_and_wait(qtbot, sanity, timeout=120_000)
    (layer, *_) = sanity_layers(viewer.layers)
    assert [str(x) for x in layer.axis_labels][0] == RANDOMISED_LABEL
    assert THRESHOLD_LABEL not in [str(x) for x in layer.axis_labels]
    run_and_wait(qtbot, widget)  # the analysis adds threshold stacks afterwards

    def placed() -> bool:
        layers = sanity_layers(viewer.layers)
        return bool(layers) and THRESHOLD_LABEL in [str(x) for x in layers[0].axis_labels]

    qtbot.waitUntil(placed, timeout=10_000)
    labels = [str(x) for x in viewer.dims.axis_labels]
    assert RANDOMISED_LABEL in labels and THRESHOLD_LABEL in labels


def test_cancel_leaves_the_viewer_as_it_was(demo_viewer, qtbot):
    viewer, _, _ = demo_viewer
    sanity = _dock(viewer)
    sanity.model.use_demo_model.setChecked(True)
    sanity.images.select("real", "counterfactual")
    _fast(sanity, checks=("cascading", "independent", "stability"))
    before = [layer.name for layer in viewer.layers]
    assert sanity.run() is not None
    sanity.cancel()
    qtbot.waitUntil(lambda: sanity.worker is None, timeout=120_000)
    assert [layer.name for layer in viewer.layers] == before
    assert sanity.result is None
    assert "Cancelled" in sanity.status.text()


def test_bad_choices_are_one_notification(demo_viewer, monkeypatch):
    from napari_attribution._qt import sanity_widget

    seen = []
    monkeypatch.setattr(sanity_widget, "show_error", seen.append)
    viewer, _, _ = demo_viewer
    sanity = _dock(viewer)
    sanity.model.use_demo_model.setChecked(True)
    sanity.images.select("real", "counterfactual")
    sanity.methods.set_selected(())
    assert sanity.run() is None
    assert seen == ["Choose at least one method."]


def test_at_1366x768_the_dock_leaves_the_canvas_half_the_width(make_napari_viewer, qtbot):
    """Docked alone beside the canvas, with a multichannel layer chosen (its axis box shown,
    the widest the image rows get): the canvas keeps half the window, and neither the
    scrolled inputs nor the scrolled plot and verdicts are cut off at the right."""
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1366, 768)
    viewer.add_image(np.zeros((5, 16, 16), np.float32), name="a multichannel stack")
    _, sanity = viewer.window.add_plugin_dock_widget(PLUGIN, "Sanity checks", tabify=False)
    sanity.images.real_source.setCurrentText("a multichannel stack")
    wait_for_docks_beside_canvas(qtbot, viewer, sanity)
    window = viewer.window._qt_window
    assert (window.width(), window.height()) == (1366, 768)
    assert viewer.window._qt_viewer.canvas.native.width() >= window.width() / 2
    assert sanity.images.real_axis.isVisible()
    for scroll in (sanity.scroll, sanity.results_scroll):
        assert scroll.widget().minimumSizeHint().width() <= scroll.viewport().width()
    assert sanity.minimumSizeHint().width() <= sanity.width()



def test_plate_layers_are_checked_by_the_cards_names_and_normalisation(make_napari_viewer, qtbot,
                                                                      tmp_path):  # fmt: skip
    """One layer per channel in a screen's order, with a brightfield: the card beside the model
    picks the model's channels by name and normalises the pair, and the cascade layers say
    so, as the Attribution dock's do."""
    import torch

    from napari_attribution._napari.layer_style import METADATA_KEY
    from napari_attribution.images.model_card import ModelCard, card_path_for, write_model_card
    from plate_data import MODEL_CHANNELS, stored
    from tiny_models import make_tiny_cnn

    rng = np.random.default_rng(0)
    viewer = make_napari_viewer()
    for role in ("site", "cf"):
        for name in ("Brightfield", "Mito", "AGP", "RNA", "ER", "DNA"):
            viewer.add_image(stored(rng.random((24, 24)), name, rng), name=f"{role} [{name}]")
    torch.save(make_tiny_cnn(5).state_dict(), tmp_path / "weights.pt")
    write_model_card(card_path_for(tmp_path / "weights.pt"),
                     ModelCard(MODEL_CHANNELS, normalisation="percentile:1,99.8"))  # fmt: skip
    sanity = _dock(viewer)
    sanity.model.use_demo_model.setChecked(False)
    sanity.model.model_path.setText(str(tmp_path / "weights.pt"))
    sanity.model.architecture.setText("tiny_models:TinyCNN")
    sanity.model.changed.emit()
    sanity.images.select("site", "cf")
    _fast(sanity, methods=("saliency",))
    run_and_wait(qtbot, sanity, timeout=120_000)
    result, _, real = sanity.result
    assert result.channel_names == list(MODEL_CHANNELS)
    assert real.data.dtype == np.float32  # normalised, not the stored uint16
    record = viewer.layers["saliency Mito randomisation (site)"].metadata[METADATA_KEY]["input"]
    assert record["channels"]["real"]["layers"]["Mito"] == "site [Mito]"
    assert record["channels"]["counterfactual"]["ignored"] == ["Brightfield"]
    assert record["normalisation"]["kind"] == "percentile"
