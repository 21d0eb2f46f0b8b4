from gpubroker.core.renting import RentalRequest, rental_tag
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker_vastai.adapter import VastAdapter
from gpubroker_vastai.emulator import VastDialect


class TestVastConformance(ProviderConformance):
    adapter = VastAdapter
    rental_request = RentalRequest(tag=rental_tag("conformance"), provider_offer_id="4242", gpu_count=1)
    rental_instance_id = "1001"
    emulator = VastDialect
