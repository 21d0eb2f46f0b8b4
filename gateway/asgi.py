"""Production ASGI entry point: ``granian --interface asgi --loop uvloop gpubroker.gateway.asgi:application``."""

from gpubroker.gateway.app import GatewayApplication

application = GatewayApplication()
