"""OLMo-core builds the export's source mixture and its dataset: ``olmo_core.yaml`` as the
README says, read by ``SourceMixtureDatasetConfig`` and ``NumpyFSLDatasetConfig``.

    python olmo_core_check.py EXPORT SEQUENCE_LENGTH WORK_DIR   # prints JSON
"""

import json
import sys
from pathlib import Path

import numpy as np
import yaml
from olmo_core.data import NumpyDatasetDType, NumpyFSLDatasetConfig, TokenizerConfig
from olmo_core.data.source_mixture import SourceMixtureDatasetConfig

export, sequence_length, work_dir = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
sources = json.loads((export / "sources.json").read_text())
tokenizer = sources["tokenizer"]
dtype = NumpyDatasetDType(tokenizer["dtype"])  # the token files' ids (int32 reads as uint32)


def mixture_config():
    config = SourceMixtureDatasetConfig.from_dict(
        yaml.safe_load((export / "olmo_core.yaml").read_text())
    )
    config.render_tables, config.quiet = False, True
    return config


mixture = mixture_config().build(npdtype=dtype.as_np_dtype(), sequence_length=sequence_length)
selected = {o.name: sum(p.tokens for p in o.path_tokens) for o in mixture.sources}
dataset = NumpyFSLDatasetConfig.from_src_mix(
    mixture_config(),
    tokenizer=TokenizerConfig(
        vocab_size=tokenizer["vocab_size"],
        eos_token_id=tokenizer["eos_id"],
        pad_token_id=tokenizer["eos_id"],
    ),
    sequence_length=sequence_length,
    dtype=dtype,
    work_dir=work_dir,
).build()
dataset.prepare()
largest = max(int(np.max(dataset[i]["input_ids"].numpy())) for i in range(len(dataset)))
spec = yaml.safe_load((export / "olmo_core.yaml").read_text())
print(
    json.dumps(
        {
            "selected_tokens": selected,
            "population": {d: e["tokens"] for d, e in sources["domains"].items()},
            "instances": len(dataset),
            "requested_tokens": spec["requested_tokens"],
            "max_repetition_ratio": {
                s["source_name"]: s["max_repetition_ratio"] for s in spec["source_list"]["sources"]
            },
            "largest_id": largest,
        }
    )
)
