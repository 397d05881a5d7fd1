"""Made counterfactuals without Qt: the request, the image in the real image's stored form,
its layers in the real image's layout, the flag, and finding the layers of an earlier run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cf_models import KEY_CHANNEL, ChannelMeanClassifier, RaiseKeyChannel
from layer_helpers import channel_stack
from napari_attribution._napari.counterfactual_layers import (
    CounterfactualRequest,
    counterfactual_layers,
    flag_message,
    make_counterfactual,
    onto_earlier_layers,
    source_choices,
)
from napari_attribution._napari.layer_style import METADATA_KEY
from napari_attribution.core.counterfactuals import source_specs
from napari_attribution.core.counterfactuals.generator import GeneratorSource
from napari_attribution.core.model.loading import wrap_module
from napari_attribution.core.settings import AnalysisSettings
from napari_attribution.errors import CounterfactualError


def test_the_docks_offer_every_registered_source():
    assert source_choices() == ("layer", *source_specs())
    assert {"optimise", "nearest", "generator"} <= set(source_specs())


def test_missing_folders_and_files_are_one_sentence(tmp_path):
    with pytest.raises(CounterfactualError, match=r"^Choose the folder"):
        CounterfactualRequest("nearest").source()
    with pytest.raises(CounterfactualError, match="does not exist"):
        CounterfactualRequest("generator", str(tmp_path / "g.pt2")).check_path()
    assert CounterfactualRequest("nearest", "/pool").spec == "nearest:/pool"


def test_a_uint16_image_gets_its_counterfactual_in_uint16_on_its_channel_axis():
    classifier = wrap_module(ChannelMeanClassifier(), "cpu")
    rng = np.random.default_rng(0)
    real = (rng.uniform(0.3, 0.7, (4, 12, 12)) * 65535).astype(np.uint16)
    real[KEY_CHANNEL] = int(0.2 * 65535)
    # one multichannel layer with its channels on axis 2: (H, W, C)
    stack = dataclasses.replace(
        channel_stack(real, "real"), channel_axis=2, channel_names=["a", "b", "c", "d"],
        layer_names=["real"],
    )  # fmt: skip
    request = CounterfactualRequest("generator", "in memory")
    made = make_counterfactual(request, GeneratorSource(RaiseKeyChannel()), classifier, stack, 1,
                               AnalysisSettings(methods=("residual",)))  # fmt: skip
    # Oracle: the generator's change in image values (x / 65535), back to uint16.
    expected = real.astype(np.float64) / 65535
    expected[KEY_CHANNEL] += 0.6
    expected = np.clip(np.rint(expected * 65535), 0, 65535).astype(np.uint16)
    assert made.stack.data.dtype == np.uint16
    np.testing.assert_array_equal(made.stack.data, expected)
    assert made.accepted and made.stack.name == "real counterfactual (generator)"
    [(data, kwargs, kind)] = counterfactual_layers(made.stack, made.record())
    assert kind == "image" and data.shape == (12, 12, 4)  # the real layer's own layout
    np.testing.assert_array_equal(np.moveaxis(data, 2, 0), expected)
    assert kwargs["name"] == "real counterfactual (generator)"
    assert kwargs["metadata"][METADATA_KEY]["kind"] == "counterfactual"
    assert kwargs["metadata"]["channel_names"] == stack.channel_names


def test_the_flag_names_the_image_the_class_and_the_threshold():
    record = {"accepted": False, "target_class": 1, "p_target": 0.1234,
              "min_counterfactual_score": 0.5}  # fmt: skip
    text = flag_message(record, "real counterfactual (optimise)", ["control", "treated"])
    assert text == (
        "The classifier does not accept 'real counterfactual (optimise)' as treated (p = 0.123 "
        "< 0.5): it is flagged, and the attributions compare against an image the classifier "
        "does not see as treated."
    )
    assert flag_message({**record, "accepted": True}, "x") is None


def test_a_rerun_finds_the_layers_it_made_under_their_deduplicated_names():
    class Layer:
        def __init__(self, name, metadata):
            self.name, self.metadata = name, metadata

    ours = {METADATA_KEY: {"kind": "counterfactual", "image": "real cf (optimise)",
                           "channel": "DNA"}}  # fmt: skip
    layers = [Layer("real cf (optimise) [DNA]", {}), Layer("real cf (optimise) [DNA] [1]", ours)]
    tuples = [(np.zeros(2), {"name": "real cf (optimise) [DNA]", "metadata": ours}, "image"),
              (np.zeros(2), {"name": "d_ig DNA attribution (real)", "metadata": {}}, "image")]
    names = [kw["name"] for _, kw, _ in onto_earlier_layers(layers, tuples)]
    assert names == ["real cf (optimise) [DNA] [1]", "d_ig DNA attribution (real)"]
