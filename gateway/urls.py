from django.urls import path

from gpubroker.gateway import ops
from gpubroker.gateway.api import api

urlpatterns = [
    path("api/v2/", api.urls),
    path("health", ops.health),
    path("metrics", ops.metrics),
]
