print("strata-bench")
