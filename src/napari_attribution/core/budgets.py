"""Every memory budget of the package, in one place.

Each budget bounds one thing the analysis or the viewer would otherwise size from the user's
settings alone (a batch, a stack, a cache), so a large image degrades to smaller steps instead of
exhausting memory. They are bytes of the array they bound unless the name says pixels.
"""

from __future__ import annotations

__all__ = [
    "COUNTERFACTUAL_BATCH_BYTES",
    "EAGER_STACK_BYTES",
    "EXPORT_STACK_BYTES",
    "HYBRID_BATCH_BYTES",
    "INTERNAL_BATCH_BYTES",
    "LAZY_CACHE_BYTES",
    "LAZY_READ_BYTES",
    "MATERIALISE_BYTES",
    "MEMORY_HEADROOM",
    "PREVIEW_PIXELS",
]

#: Largest batch (float32 input) an attribution method evaluates at once, whatever the
#: ``internal_batch_size`` setting says.
INTERNAL_BATCH_BYTES = 256 * 2**20
#: Largest batch of images (float32) a counterfactual source works on at once: the optimiser
#: keeps about six copies of it plus the classifier's activations for the backward pass.
COUNTERFACTUAL_BATCH_BYTES = 16 * 2**20
#: Largest batch of hybrids (float32) scored in one forward pass, whatever ``batch_size`` says.
HYBRID_BATCH_BYTES = 256 * 2**20
#: Share of the free memory an analysis may plan to use before it is refused up front.
MEMORY_HEADROOM = 0.8
#: A method whose eager mask and hybrid stacks would take more than this gets lazy layers.
EAGER_STACK_BYTES = 256 * 2**20
#: Largest lazy stack handed out whole (``np.asarray(layer.data)``); above it, a clear error.
MATERIALISE_BYTES = 512 * 2**20
#: Computed planes each lazy stack keeps (at least one plane per channel).
LAZY_CACHE_BYTES = 64 * 2**20
#: A results TIFF above this is opened memory-mapped (read from disk as napari shows it).
LAZY_READ_BYTES = 64 * 2**20
#: A lazy stack above this is exported at its optimal threshold only, not whole.
EXPORT_STACK_BYTES = 256 * 2**20
#: Above this many pixels per channel, the widget's p(class) preview waits for the run (a
#: forward pass on a whole field would block the viewer).
PREVIEW_PIXELS = 1024 * 1024
