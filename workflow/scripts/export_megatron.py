from pathlib import Path

from chameleon_mix.export import write_eval_megatron
from chameleon_mix.io import logged

with logged(snakemake.log[0]):
    write_eval_megatron(
        {"val": snakemake.input.val, "test": snakemake.input.test},
        snakemake.input.tokenizer,
        {
            split: Path(snakemake.output[i]).with_suffix("")
            for i, split in ((0, "val"), (2, "test"))
        },
    )
