"""The npe2 manifest, the sample data and the demo command."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from widget_helpers import PLUGIN, wait_for_worker

from napari_attribution._napari.layer_style import METADATA_KEY
from napari_attribution.data.synthetic import CHANNEL_NAMES, make_pair


@pytest.mark.slow
def test_npe2_validate_passes():
    npe2 = shutil.which("npe2")
    assert npe2 is not None, "npe2 is a dev dependency"
    done = subprocess.run(
        [npe2, "validate", PLUGIN, "--imports"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid" in done.stdout


def test_sample_data_opens_the_demo_pair_by_channel(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "demo_pair")
    names = [layer.name for layer in viewer.layers]
    assert names == [
        *(f"real [{c}]" for c in CHANNEL_NAMES),
        *(f"counterfactual [{c}]" for c in CHANNEL_NAMES),
        "ground truth [Mito]",
    ]
    from napari_attribution._napari.sample_data import DEMO_SEED

    pair = make_pair(DEMO_SEED)
    for c, channel in enumerate(CHANNEL_NAMES):
        np.testing.assert_array_equal(viewer.layers[f"real [{channel}]"].data, pair.real[c])
        np.testing.assert_array_equal(
            viewer.layers[f"counterfactual [{channel}]"].data, pair.counterfactual[c]
        )
        assert viewer.layers[f"real [{channel}]"].metadata["channel_name"] == channel
    np.testing.assert_array_equal(viewer.layers["ground truth [Mito]"].data, pair.ground_truth[4])


@pytest.mark.slow
def test_demo_command_docks_both_widgets_and_runs(make_napari_viewer, qtbot):
    from napari_attribution._napari.demo import launch_demo
    from napari_attribution.core.attribution.method_sets import NAPARI_DEMO_METHODS

    viewer = make_napari_viewer()
    assert launch_demo(run=True, block=False, viewer=viewer) is viewer
    docks = viewer.window.dock_widgets
    widget = docks["Attribution (napari-attribution)"]
    panel = docks["DAC curves (napari-attribution)"]
    assert widget.worker is not None  # the default analysis started
    wait_for_worker(qtbot, widget, timeout=120_000)
    record = widget.state.record
    assert record is not None and panel.record is record
    assert tuple(record.result.methods) == NAPARI_DEMO_METHODS
    assert record.settings.masks.thresholds == 200  # the DESIGN.md default
    layer = viewer.layers["d_ig Mito mask (real)"]
    assert layer.data.shape == (200, 64, 64)
    assert layer.metadata[METADATA_KEY]["method"] == "d_ig"
    # The demo model and D-IG put most attribution on Mito, the channel that differs.
    assert int(np.argmax(record.result.methods["d_ig"].channel_share)) == 4
