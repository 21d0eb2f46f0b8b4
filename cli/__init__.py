"""The ``gpubroker`` command: the commands that run and administer the product (``operate``) and
the commands a person uses to compare GPU offers, thin over the ``gpubroker_client`` API client
(``offers``, ``rank``, ``watch``, ``providers``, ``history``, ``gpus``)."""
