"""The 4B -> 0.6B output-space alignment: prompt corpus, fit, report, compare."""
