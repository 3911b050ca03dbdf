"""Executor: engines, verifiers, TTS methods, grading, the run loop."""
