"""Stream ingestion: sources, a spilling spool, sinks, and the ingester that joins them."""
