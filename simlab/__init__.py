"""simlab: a laboratory for recommender-system feedback loops.

The engine (this package) knows the loop; ``simlab.environments`` holds what is simulated
and ``simlab.agents`` what recommends. Start with :func:`simlab.scenario.load_scenario`
and :func:`simlab.runner.run_scenario`, or the ``simlab`` command.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# In a source checkout agents/ and environments/ sit beside simlab/ (an installed wheel maps
# them inside it): let simlab.agents and simlab.environments resolve there too, so a Ray
# worker that imports simlab from the checkout (Ray puts the driver's working directory on
# its workers' path) finds the whole package.
_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if not os.path.isdir(os.path.join(os.path.dirname(__file__), "agents")) and all(
    os.path.isfile(os.path.join(_root, d, "__init__.py")) for d in ("agents", "environments")
):
    __path__.append(_root)  # noqa: F821 - the package's own search path

try:
    __version__ = version("simlab")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
