"""One module per stage (generate, classify, instances, reason, export, dedup), the
runner that keeps C requests in flight, and the loop over a list of records."""
