"""A mixing method defined outside the package, as a user's would be: temperature sampling
over the domains' train tokens (``alpha_i ∝ n_i^(1/T)``, T = 2), registered through the
``chameleon_mix.methods`` entry-point group (temperature_sampling-0.1.dist-info)."""

import json

from chameleon_mix.methods import Method
from chameleon_mix.mixtures import write_mixture

TEMPERATURE = 2.0


def train_tokens(stats_files):
    return [json.loads(open(path).read())["splits"]["train"]["tokens"] for path in stats_files]


def temperature_mixture(out, domains, inputs, settings):
    sizes = [n ** (1 / settings["temperature"]) for n in train_tokens(inputs["stats"])]
    total = sum(sizes)
    return write_mixture(out, "temperature", {d: s / total for d, s in zip(domains, sizes)})


METHOD = Method(
    temperature_mixture,
    "Temperature sampling",
    inputs=lambda dataset, method: {"stats": dataset.token_files("stats.json")},
    settings=lambda dataset: {"temperature": TEMPERATURE},
    compute="nothing: the domains' token counts",
)
