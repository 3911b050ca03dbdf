"""tts-planner: choose, predict and run compute-optimal test-time scaling."""

__version__ = "0.1.0"
