"""``python -m chameleon_mix.clusters <cluster dir> --k K``: :func:`.kmeans.refit`."""

import argparse
import json

from .kmeans import refit

if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m chameleon_mix.clusters",
        description="ARI of a clustered dataset's documents refitted with another k, e.g. "
        "python -m chameleon_mix.clusters results/demo-clusters/clusters --k 9",
    )
    parser.add_argument("cluster_dir", help="results/<clustered dataset>/clusters")
    parser.add_argument("--k", type=int, required=True, help="clusters to fit")
    print(json.dumps(refit(**vars(parser.parse_args())), indent=2))
