"""The worker process: the queue consumer, the DLQ consumer, maintenance and metrics."""
