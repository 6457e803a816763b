"""Services over the history: quick-statistics baselines (read by the HTTP layer and republishing) and the bridge's
core per-app state (read by the HTTP layer)."""
