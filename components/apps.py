from django.apps import AppConfig


class ComponentsConfig(AppConfig):
    name = "components"
    default_auto_field = "django.db.models.BigAutoField"
