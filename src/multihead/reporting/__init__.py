"""Files and tables that let a run be judged without re-running it."""
