"""Classification transfer on frozen features: feature extraction and its cache, the linear
protocol (logistic regression with a C sweep), kNN, few-shot episodes, metrics, results
tables (:mod:`.transfer` runs one checkpoint on one dataset)."""
