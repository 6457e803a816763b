"""The HTTP layer: the Flask app, the original API and its validation, SSE streams, dashboard, OpenAPI, metrics and the
gunicorn worker."""
