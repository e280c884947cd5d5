"""Long-running tasks under aiojobs: the reconciler, the call worker, the pollers."""
