"""`ttsplan serve`: an OpenAI-compatible HTTP server that plans and runs test-time scaling per request.

schema (request bodies and OpenAI-style errors), strategy (which configuration a request runs),
batching (the queue that batches concurrent requests into one method call), metrics (Prometheus),
app (the FastAPI routes). Only planner/cli/serve.py knows command-line flags.
"""
