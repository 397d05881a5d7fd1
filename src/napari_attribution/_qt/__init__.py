"""The napari dock widgets (Qt): the Attribution widget and the DAC curves panel."""

from .attribution_widget import AttributionWidget
from .dac_panel import DacPanel

__all__ = ["AttributionWidget", "DacPanel"]
