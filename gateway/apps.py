from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gpubroker.gateway"
    label = "gateway"
    verbose_name = "GPUBROKER gateway"
