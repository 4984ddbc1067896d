"""An agent that fails on purpose (imported by worker processes in tests/test_pool.py)."""

import os

from simlab.agents.base import Agent


class Broken(Agent):
    """Raises at its first act."""

    def act(self, obs):
        """Fail."""
        raise ValueError("broken on purpose")


class Dies(Agent):
    """Kills its own process at its third act (a worker that dies mid-run)."""

    def act(self, obs):
        """Exit the process at step 2, else recommend nothing useful."""
        if obs.step >= 2:
            os._exit(3)
        from simlab.agents.baselines import RandomAgent

        return RandomAgent(self.params, self.ctx).act(obs)
