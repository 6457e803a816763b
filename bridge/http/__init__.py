"""The HTTP layer: the Flask app wired around a runtime, its per-app state, the original API and its validation, SSE
streams, dashboard, OpenAPI, metrics and the gunicorn worker."""
