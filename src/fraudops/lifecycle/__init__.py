"""The model lifecycle: retraining, champion/challenger judgement and promotion, model operations.

Modules: `retrain` (train on the warehouse's recent labelled data, register a challenger),
`evidence` (paired bootstrap and the promotion rule, pure), `compare` (judge champion and
challenger; the scheduled champion/challenger job), `models` (list, promote, roll back),
`audit` (the decision trail and version tags), `notify` (tell the service to reload),
`jobs` (background jobs of the HTTP API), `scheduler` and `loop` (the closed loop's clock).
Nothing is imported here: each module is imported where it is used (training is heavy).
"""
