"""The ingest stage: item catalogs and dialogue files (ReDial JSONL, INSPIRED TSV) into the lake, bad records
to quarantine, mentions linked to catalog items."""
