"""The config, checked and planned once, and the input functions that hand a job's wildcards
to the plan (chameleon_mix.plan). Every decision lives there, tested without Snakemake.
"""

from chameleon_mix.config import ConfigError
from chameleon_mix.corpus import COLLECTORS, package_records
from chameleon_mix.launch import job_json, launcher, shell_prefix
from chameleon_mix.methods import METHODS, reweighted_proxies
from chameleon_mix.plan import Plan

try:
    PLAN = Plan.from_config(
        config, workflow.source_path("../schemas/config.schema.yaml")
    )
except ConfigError as err:
    raise WorkflowError(str(err)) from None

DEFAULT_DATASET = PLAN.default_dataset
shell.prefix(shell_prefix())  # $PYTHON, the training rules' interpreter: this one
SAFE = "[A-Za-z0-9][A-Za-z0-9_.+-]*"


wildcard_constraints:
    dataset=SAFE,
    domain=SAFE,
    proxy=SAFE,
    collector="|".join(sorted(COLLECTORS)),
    ckpt=r"final|step-\d+",
    embedder=r"seed-\d+|pretrained",
    method="|".join(METHODS),
    seed=r"\d+",


def get_dataset(wildcards):
    """The plan of the job's dataset (chameleon_mix.plan.Dataset)."""
    return PLAN.dataset(wildcards.dataset)


def get_proxy(wildcards):
    return PLAN.proxy(wildcards.proxy)


def get_domains(wildcards):
    return get_dataset(wildcards).domains


def get_setting(*keys):
    """A params function: the dataset's resolved setting at ``keys``."""

    def setting(wildcards):
        value = get_dataset(wildcards).settings
        for key in keys:
            value = value[key]
        return value

    return setting


def get_token_files(name):
    """An input function: the dataset's token file ``name`` of every domain."""
    return lambda wildcards: get_dataset(wildcards).token_files(name)


def get_evaluated_files(name):
    """An input function: token file ``name`` of every domain and of the target."""

    def files(wildcards):
        dataset = get_dataset(wildcards)
        return dataset.token_files(name, dataset.evaluated_domains)

    return files


def get_cluster_part_files(path):
    """An input function: ``path`` (with {domain} and {split}) of every pooled part."""
    return lambda wildcards: get_dataset(wildcards).cluster_part_files(path)


def get_trained_model(wildcards):
    return get_dataset(wildcards).trained_model(wildcards.method, wildcards.seed)


def get_tokenizer(wildcards):
    return get_dataset(wildcards).tokenizer


def get_gpus(model):
    """A resource function: GPUs of a job running the dataset's ``model`` (`proxy`, `base`,
    ..., or the pretrained model when finetuning)."""
    return lambda wildcards: get_dataset(wildcards).gpus(model)


def get_embedding_model(wildcards):
    return get_dataset(wildcards).embedding_model(getattr(wildcards, "embedder", None))


def get_mixture_inputs(wildcards):
    return get_dataset(wildcards).mixture_inputs(wildcards.method)


def get_reweighted_proxy_inputs(wildcards):
    return get_dataset(wildcards).method_inputs(wildcards.method, "proxy_inputs")


def training_job(settings):
    """A training rule's job as JSON for ``chameleon_mix.launch``: its files and
    ``settings`` (name -> function of the wildcards)."""

    def job(wildcards, input, output):
        values = {name: setting(wildcards) for name, setting in settings.items()}
        return job_json(input, output, wildcards, values)

    return job


def job_launcher(wildcards, resources):
    """``$PYTHON``, or torch's launcher with a process per GPU when the job has several."""
    return launcher(resources.gpu, getattr(resources, "nodes", 1))
