"""The simlab dashboard: a Streamlit app over run directories (and live runs).

Start it with ``simlab dashboard [--runs DIR] [--port N]``. ``app.py`` is the Streamlit
script (sidebar and page routing); ``state`` keeps the view in the URL; ``data`` and
``runmeta`` hold the pure data logic (phases, metric frames, labels, progress), with the
interval and smoothing maths in ``simlab.intervals``; ``style`` the colours; ``charts`` the
Plotly figures; ``runs_page``, ``compare``, ``views`` (Ecosystem, Users), ``live`` and
``launch`` the pages. Runs are read only through ``simlab.store``; nothing in simlab imports
this package.
"""
