from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker_vastai.adapter import VastAdapter


class TestVastConformance(ProviderConformance):
    adapter = VastAdapter
