"""The one Python function the jobs call from SQL: ``decode_price_update``.

It runs in the TaskManager's JVM (``python.execution-mode: thread``), so a record does not wait
for a batch to be shipped to a separate Python process. That mode cannot hand a null number
inside a row back to the JVM, so an unknown GPU count comes back as 0 and a malformed record's
prices as 0 (its ``error`` is set); the ``decoded`` view turns the 0 count back into NULL.
"""

from __future__ import annotations

from decimal import Decimal

from pyflink.common import Row
from pyflink.table import DataTypes
from pyflink.table.udf import ScalarFunction, udf

from gpubroker_flink import records

PRICE = DataTypes.DECIMAL(20, 6)
DECODED = DataTypes.ROW(
    [
        DataTypes.FIELD("error", DataTypes.STRING()),
        DataTypes.FIELD("provider", DataTypes.STRING()),
        DataTypes.FIELD("offer_id", DataTypes.STRING()),
        DataTypes.FIELD("gpu_type", DataTypes.STRING()),
        DataTypes.FIELD("region", DataTypes.STRING()),
        DataTypes.FIELD("continent", DataTypes.STRING()),
        DataTypes.FIELD("gpu_count", DataTypes.INT()),
        DataTypes.FIELD("old_price", PRICE),
        DataTypes.FIELD("new_price", PRICE),
        DataTypes.FIELD("at", DataTypes.STRING()),
    ]
)


class DecodePriceUpdate(ScalarFunction):  # type: ignore[misc]
    def eval(self, value: str | None) -> Row:
        decoded = records.decode(value)
        return Row(
            *decoded._replace(
                gpu_count=decoded.gpu_count or 0,
                old_price=decoded.old_price or ZERO,
                new_price=decoded.new_price or ZERO,
            )
        )


ZERO = Decimal(0)


decode_price_update = udf(DecodePriceUpdate(), input_types=[DataTypes.STRING()], result_type=DECODED)
