"""`python -m curation`: the parser and one module per command group; other packages register commands through curation.cli.registry."""
