from pathlib import Path

from chameleon_mix.export import write_megatron_dataset
from chameleon_mix.io import logged

with logged(snakemake.log[0]):
    write_megatron_dataset(
        Path(snakemake.input.stats).parent, Path(snakemake.output.bin).with_suffix("")
    )
