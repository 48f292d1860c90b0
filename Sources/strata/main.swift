import StrataCLI

Strata.runMain()
