"""Production ASGI entry point: ``uvicorn gpubroker.gateway.asgi:application``."""

from gpubroker.gateway.app import GatewayApplication

application = GatewayApplication()
