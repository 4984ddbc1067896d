"""The simlab dashboard: a Streamlit app over run directories (and live runs).

Start it with ``simlab dashboard [--runs DIR] [--port N]``. ``app.py`` is the Streamlit
script; ``data`` holds the pure aggregations, ``charts`` the Plotly figures, ``views`` the
Runs, Compare, Ecosystem and Users pages and ``live`` the Live and Launch pages. Runs are
read only through ``simlab.store``; nothing in simlab imports this package.
"""
