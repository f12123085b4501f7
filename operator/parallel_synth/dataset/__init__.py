"""Dataset I/O: read and check the shards, index and summary of a rendered dataset, wherever it is stored."""
