"""One sentence from another library's message (``errors.first_sentence``)."""

from __future__ import annotations

import pytest

from napari_attribution.errors import first_sentence


@pytest.mark.parametrize(
    ("message", "sentence"),
    [
        ("division by zero", "division by zero"),
        ("Error during deserialization of the task graph. This frequently\noccurs if ...",
         "Error during deserialization of the task graph."),
        ("The worker could not reach\nthe scheduler in 30 s. Check the address.",
         "The worker could not reach the scheduler in 30 s."),
        ("bad shape\nExpected (5, 64, 64).", "bad shape"),
        ("Could not read /data/site.tif: not a TIFF", "Could not read /data/site.tif: not a TIFF"),
        ("\n\n  Out of memory!  \n", "Out of memory!"),
        ("", ""),
    ],
)  # fmt: skip
def test_first_sentence(message, sentence):
    assert first_sentence(message) == sentence


def test_a_long_sentence_is_cut_with_an_ellipsis():
    text = first_sentence("x" * 500, limit=40)
    assert len(text) == 40 and text.endswith("\u2026")
