from django.urls import path

from gpubroker.gateway import docs, errors, ops
from gpubroker.gateway.api import api
from gpubroker.gateway.internal.api import internal_api
from gpubroker.gateway.page import views as page

urlpatterns = [
    path("", page.page),
    path("ui/<str:name>", page.asset),
    path("api/v2/openapi.json", docs.openapi_json),
    path("api/v2/asyncapi.json", docs.asyncapi_json),
    path("api/v2/docs", docs.docs_page),
    path("api/v2/docs/<str:name>", docs.docs_asset),
    path("api/v2/", api.urls),
    path("internal/v1/", internal_api.urls),
    path("health", ops.health),
    path("ready", ops.ready),
    path("metrics", ops.metrics),
]

# Whatever Django itself refuses answers in the API's JSON error shape, never an HTML page.
handler400 = errors.bad_request
handler403 = errors.forbidden
handler404 = errors.not_found
handler500 = errors.server_error
