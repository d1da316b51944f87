"""One module per feed: each speaks its provider's documented API and nothing else."""
