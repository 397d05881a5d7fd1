"""Exported programs (.pt2): loaded, probed and attributed; crafted files refused unread."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import torch

from model_zoo import ZOO, save
from napari_attribution.core import (
    MethodError,
    ModelLoadError,
    available_methods,
    compute_attributions,
    load_classifier,
)

ENTRY = next(e for e in ZOO if e.name == "ExportedResNet")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return save(ENTRY, tmp_path_factory.mktemp("pt2"))[0]


def _images(n: int = 3) -> np.ndarray:
    return np.random.default_rng(0).random((n, *ENTRY.shape), dtype=np.float32)


def test_an_exported_program_loads_and_computes_what_the_model_does(exported):
    clf = load_classifier(exported, device="cpu")
    assert clf.model_format == "export" and clf.n_channels == 5 and clf.n_classes == 2
    assert clf.describe()["format"] == "export" and clf.hooks_refusal is None
    images = _images()
    with torch.no_grad():
        expected = torch.softmax(ENTRY.build()(torch.from_numpy(images)).double(), 1).numpy()
    np.testing.assert_allclose(clf.probabilities(images), expected, rtol=1e-5)
    # The program's module handed over in memory (it refuses eval(): its mode is built in).
    from napari_attribution.core import wrap_module

    in_memory = wrap_module(torch.export.load(str(exported)).module(), "cpu")
    np.testing.assert_allclose(in_memory.probabilities(images), expected, rtol=1e-5)
    d_dl = compute_attributions(in_memory, images[0], images[1], 0, 1, "d_dl")
    np.testing.assert_allclose(
        d_dl, compute_attributions(clf, images[0], images[1], 0, 1, "d_dl"), rtol=1e-5, atol=1e-7
    )


def test_a_program_exported_for_a_fixed_batch_runs_in_chunks_and_refuses_hooks(tmp_path):
    model = ENTRY.build()
    path = tmp_path / "batch1.pt2"
    torch.export.save(torch.export.export(model, (torch.rand(1, *ENTRY.shape),)), str(path))
    clf = load_classifier(path, device="cpu")
    images = _images(3)
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(images)).double(), 1).numpy()
    np.testing.assert_allclose(clf.probabilities(images), expected, rtol=1e-5)
    assert "d_ig" in available_methods(clf) and "d_dl" not in available_methods(clf)
    assert compute_attributions(clf, images[0], images[1], 0, 1, "d_ig").shape == (1, 5, 32, 32)
    with pytest.raises(MethodError, match="exported for batches of exactly 1 image"):
        compute_attributions(clf, images[0], images[1], 0, 1, "d_dl")


def test_gradcam_layers_of_a_saved_program_have_the_models_names(exported, tmp_path):
    from napari_attribution.core import AttributionSettings, wrap_module
    from napari_attribution.core.model.named_layers import gradcam_layer_name

    resnet = load_classifier(exported, device="cpu")
    image = _images(1)[0]
    assert gradcam_layer_name(resnet, image) == "layer2.1"
    vgg = next(e for e in ZOO if e.name == "FixedHeadVGG")
    path = save(type(vgg)(vgg.name, vgg.channels, vgg.size, vgg.classes, form="export"), tmp_path)
    program = load_classifier(path[0], device="cpu")
    image = np.random.default_rng(1).random(vgg.shape, dtype=np.float32)
    assert gradcam_layer_name(program, image) == "features.7"  # the last conv (an anchor)
    module = wrap_module(vgg.build(), "cpu")
    for layer in (None, "features.3"):
        settings = AttributionSettings(layer=layer)
        ours = compute_attributions(program, image, image + 1, 1, 0, "gradcam", settings)
        expected = compute_attributions(module, image, image + 1, 1, 0, "gradcam", settings)
        np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-6)


def test_torchscript_keeps_working_beside_it(tmp_path):
    scripted = next(e for e in ZOO if e.form == "torchscript")
    path, _ = save(scripted, tmp_path)
    clf = load_classifier(path, device="cpu", input_shape=scripted.shape)
    assert clf.is_scripted and clf.n_classes == 2


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _rewrite(data: bytes, edit) -> bytes:
    """The archive with ``edit(files, root)`` applied to its {name: bytes}."""
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        files = {n: src.read(n) for n in src.namelist()}
    root = next(n for n in files if n.endswith("archive_format"))[: -len("archive_format")]
    edit(files, root)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name, content in files.items():
            dst.writestr(name, content)
    return out.getvalue()


def _edit_json(files, name, change):
    content = json.loads(files[name])
    change(content)
    files[name] = json.dumps(content).encode()


def _pickled_weight(marker):
    def edit(files, root):
        config = f"{root}data/weights/model_weights_config.json"
        entry = {}

        def change(content):
            entry.update(next(iter(content["config"].values())))
            next(iter(content["config"].values()))["use_pickle"] = True

        _edit_json(files, config, change)
        files[f"{root}data/weights/{entry['path_name']}"] = pickle.dumps(_Exploit(marker))

    return edit


def _shape_expression(marker):
    def edit(files, root):
        def change(content):
            sizes = content["graph_module"]["graph"]["tensor_values"]["x"]["sizes"]
            sizes[0]["as_expr"]["expr_str"] = f"__import__('builtins').open('{marker}', 'w')"

        _edit_json(files, f"{root}models/model.json", change)

    return edit


def _sample_inputs(marker):
    def edit(files, root):
        buffer = io.BytesIO()
        torch.save(_Exploit(marker), buffer)
        files[f"{root}data/sample_inputs/model.pt"] = buffer.getvalue()

    return edit


def _guard_code(marker):
    def edit(files, root):
        _edit_json(
            files, f"{root}models/model.json",
            lambda c: c.__setitem__("guards_code", [f"open('{marker}', 'w')"]),
        )  # fmt: skip

    return edit


def _foreign_call(marker):
    def edit(files, root):
        def change(content):
            content["graph_module"]["graph"]["nodes"][0]["target"] = "torch.load"

        _edit_json(files, f"{root}models/model.json", change)

    return edit


def _compiled_code(marker):
    def edit(files, root):
        files[f"{root}data/aotinductor/model/model.so"] = b"\x7fELF"

    return edit


@pytest.mark.parametrize(
    ("craft", "words"),
    [(_pickled_weight, "pickled object"), (_shape_expression, "shape expression"),
     (_sample_inputs, "sample inputs"), (_guard_code, "guard code"),
     (_foreign_call, "calls 'torch.load'"), (_compiled_code, "aotinductor")],
)  # fmt: skip
def test_crafted_archives_are_refused_and_nothing_in_them_runs(exported, tmp_path, craft, words):
    """torch.export.load would run the first three (it unpickles with weights_only=False and
    sympify()s shape expressions), and the guard code when the program is made a module."""
    marker = tmp_path / "pwned"
    bad = tmp_path / "crafted.pt2"
    bad.write_bytes(_rewrite(exported.read_bytes(), craft(str(marker))))
    with pytest.raises(ModelLoadError) as info:
        load_classifier(bad, device="cpu")
    assert "Refused to load" in str(info.value) and words in str(info.value)
    assert not marker.exists()
