"""Review: pure status rules, annotating, the queue with leases, adjudication."""
