"""Background services over the history: quick-statistics baselines."""
