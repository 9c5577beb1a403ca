"""The model lifecycle: retraining, champion/challenger judgement and promotion, model operations.

`facade.Lifecycle` is the one way in (monitor, retrain, challenge, promote, roll back, and
the loop's scheduled jobs), used by the CLI, the API, `fraudops up`, the demo and the DAGs.
Modules behind it: `retrain` (train on the warehouse's recent labelled data, register a
challenger), `evidence` (paired bootstrap and the promotion rule, pure), `compare` (judge
champion and challenger; the champion/challenger job), `models` (list, promote, roll back),
`audit` (the decision trail and version tags), `notify` (tell the service to reload), `jobs`
(background jobs of the HTTP API), `scheduler` (the event-time clock) and `loop` (a job's
findings, the waiting-challenger rule). Nothing is imported here: each module is imported
where it is used (training is heavy).
"""
