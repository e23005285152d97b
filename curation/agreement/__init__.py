"""Inter-annotator agreement: pure numpy statistics, ratings loaded from the database, the report."""
