"""Examples in and out: file formats, column mapping, the importer, export, projects, browse."""
