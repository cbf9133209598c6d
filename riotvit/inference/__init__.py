"""Prediction: run a model bundle over crops (``runner``), stream a region (``predictor``), write maps (``writers``)."""
