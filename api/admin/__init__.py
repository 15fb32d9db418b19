"""The admins of every model, on the dashboard's site (api/dashboard.py).

Django imports this module for the `api` app; the imports register the admins.
"""

from api.admin import components, runs  # noqa: F401
