"""Pipelines: a YAML file of notebook steps (a DAG), validated whole, then run step by step.

    name: quickstart
    parameters: {epochs: 2}                  # defaults; `-p epochs=3` overrides
    schedule: "0 2 * * *"                    # optional, for `workbench schedule add`
    steps:
      tune:
        notebook: tune.ipynb                 # in notebooks/, or a path relative to the repository
        parameters: {trials: 10, config: {task: images, epochs: "${params.epochs}"}}
        timeout: 2h                          # per attempt; the step's processes are killed
        retries: 1
      train:
        notebook: train.ipynb
        needs: [tune]
        parameters: {learning_rate: "${steps.tune.outputs.best_config.learning_rate}"}

Every step runs its notebook with papermill in its own process (on this machine or on a Dask
cluster). A step is skipped as UNCHANGED when its notebook, its resolved parameters and its
upstream outputs equal those of its last success; the outputs recorded then are handed downstream
again. Each pipeline run is an MLflow parent run with one child run per step; runs a step's
notebook creates nest under the step run.

    spec          the file format: load_pipeline validates a whole file
    references    ${...} references and their substitution
    introspect    a step's notebook read without running it: where it is, its parameters cell
    state         what succeeded last (for skipping unchanged steps), one run per pipeline at a time
    runner        the DAG runner: run_pipeline
    attempts      one attempt of a step (Attempt in, Outcome out), in a child process
    executors     where attempts run: local processes or a Dask cluster, behind one protocol
    runs          a pipeline run in MLflow, written and read back
    outputs       record(): values a step notebook hands downstream
    results       step statuses, results and the summary table
    cron          cron lines as APScheduler triggers
    schedules     persistent schedules and the `workbench scheduler` daemon
    cli           `workbench pipeline`, `workbench schedule` and `workbench scheduler`

Nothing is imported here: step notebooks import `outputs` and stay quick to start.
"""
