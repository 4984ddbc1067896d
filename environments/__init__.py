"""What is simulated: user populations, the content ecosystem and the platform.

Imported as ``simlab.environments``; the engine reaches these classes through
``simlab.registry``, never by importing them directly.
"""

from simlab.environments.content import CreatorEcosystem, ItemTable, Phase
from simlab.environments.platform import Platform
from simlab.environments.users import LogitUserPopulation

__all__ = [
    # users
    "LogitUserPopulation",
    # content
    "CreatorEcosystem",
    "ItemTable",
    "Phase",
    # platform
    "Platform",
]
