from chameleon_mix.io import logged
from chameleon_mix.tokenizer import read_texts, train_tokenizer

with logged(snakemake.log[0]):
    texts = read_texts(snakemake.input, per_file=snakemake.params.train_documents)
    train_tokenizer(texts, snakemake.params.vocab_size, snakemake.output[0])
    print(f"trained on {len(texts)} documents")
