"""BigQuery through Carol's temporary service-account key: queries, Storage Read streams, results."""
