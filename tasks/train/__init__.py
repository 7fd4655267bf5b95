"""The train stage: train, evaluate, export and register a graph-prompt recommender from the lake."""
