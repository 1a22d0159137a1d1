from chameleon_mix.evaluate import downstream
from chameleon_mix.io import logged

with logged(snakemake.log[0], threads=snakemake.threads):
    evaluation = snakemake.params.evaluation
    downstream(
        snakemake.input.model,
        tasks=list(evaluation["tasks"]),
        shots=list(evaluation["shots"]),
        local_task_dir=snakemake.input.tasks,
        out_json=snakemake.output[0],
        limit=evaluation["limit"],
        batch_size=evaluation["batch_size"],
    )
