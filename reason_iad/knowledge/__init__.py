"""Category knowledge: seed files, and (later) the LanceDB store and retrieval."""
