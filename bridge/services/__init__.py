"""Services over the history, shared by the HTTP layer and republishing: quick-statistics baselines and the bridge's
core per-app state."""
