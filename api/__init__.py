"""The HTTP layer: DRF views, serializers and routing of /api/v1/, the exception handler that
maps every error to JSON, and the dashboard (the admin, whose actions write through ingest/).

It imports ingest/, the domain (components, runs) and common/; nothing imports it but the
project's URLconf and settings.
"""
