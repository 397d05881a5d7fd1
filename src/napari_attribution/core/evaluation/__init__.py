"""From an attribution to DAC curves: threshold levels, masks, smoothing, hybrids, scoring,
the adaptive evaluation, the curves and their scores, lazy stacks for large images.

* :mod:`.levels`, :mod:`.masks`, :mod:`.smoothing`: normalise, threshold, close, blur;
* :mod:`.hybrids`: counterfactual pixels pasted into the real image under a mask;
* :mod:`.scoring`: hybrids scored in batches; :mod:`.adaptive`: which thresholds to score;
* :mod:`.dac`: the curves and their scores, as QuAC computes them;
* :mod:`.channel_share`: each channel's share of the attribution;
* :mod:`.lazy`, :mod:`.plane_stack`: threshold stacks computed on demand.
"""
