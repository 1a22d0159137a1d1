"""The training rules' job scripts, run on every rank by :mod:`chameleon_mix.launch`.

Each is a thin adapter like those in ``workflow/scripts/``: it reads the ``snakemake`` object
(files, params, wildcards, threads, log) and calls the library. They live in the package rather
than beside the other scripts because the rules start them by module name (``python -m``, or
``-m`` of torchrun, itself ``python -m torch.distributed.run``), which does not depend on where
the checkout lies.
"""
