"""An agent that fails on purpose (imported by worker processes in tests/test_pool.py)."""

from simlab.agents.base import Agent


class Broken(Agent):
    """Raises at its first act."""

    def act(self, obs):
        """Fail."""
        raise ValueError("broken on purpose")
