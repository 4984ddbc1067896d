"""simlab: a laboratory for recommender-system feedback loops.

The engine (this package) knows the loop; ``simlab.environments`` holds what is simulated
and ``simlab.agents`` what recommends. Start with :func:`simlab.scenario.load_scenario`
and :func:`simlab.runner.run_scenario`, or the ``simlab`` command.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("simlab")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
