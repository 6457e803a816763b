"""Background services over the history: quick-statistics baselines and the periodic ticker that drives them."""
