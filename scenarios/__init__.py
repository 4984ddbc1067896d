"""Ready-to-run scenario files, shipped inside the package as ``simlab.scenarios``.

This folder holds YAML only; :mod:`simlab.bundled` finds the files by name through
``importlib.resources``, in a source checkout and in an installed wheel alike.
"""
