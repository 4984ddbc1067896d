"""Execution backends: ``local`` (in-process); Ray actors come with the Ray backend."""
