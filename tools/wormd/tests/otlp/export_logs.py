"""Exports N log records to wormd with the OpenTelemetry Python SDK
(OTLP/HTTP, protobuf): the SDK's own exporter, batch processor and
logging bridge, as a Python service would use them.

    python3 export_logs.py ENDPOINT TOKEN N

Exits 1 if the SDK reports a failed export.
"""
import logging
import sys

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
from opentelemetry.sdk.resources import Resource

endpoint, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])


class Checked(OTLPLogExporter):
    """The SDK's exporter, remembering whether any export failed."""

    failed = 0

    def export(self, batch):
        result = super().export(batch)
        if result != LogRecordExportResult.SUCCESS:
            Checked.failed += 1
        return result


exporter = Checked(endpoint=endpoint, headers={"Authorization": f"Bearer {token}"})
provider = LoggerProvider(resource=Resource.create({"service.name": "billing-py"}))
provider.add_log_record_processor(BatchLogRecordProcessor(exporter, max_export_batch_size=64))
log = logging.getLogger("billing.audit")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))
for i in range(n):
    log.warning("payment %d approved", i, extra={"user": "alice", "amount": i})
provider.force_flush()
provider.shutdown()
print(f"exported {n}, failed batches {Checked.failed}")
sys.exit(1 if Checked.failed else 0)
